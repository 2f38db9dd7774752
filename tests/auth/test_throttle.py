"""Failed logins are throttled per account and per client address, in PostgreSQL (so across
replicas), without spending argon2 work on refused guesses; failures are logged and audited."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from sqlalchemy import text

from auth.throttle import LoginThrottle, Policy, account_bucket, address_bucket
from opswire.contract import rpc as calls
from opswire.runtime.db import create_engine, session_factory
from opswire.runtime.rpc import RpcClient, RpcError
from tests.auth.conftest import RunAuth
from tests.auth.helpers import PASSWORD, eventually, new_user

# Long enough that a lock set in a test is still on when the test looks at it.
LOCK = {"login_base_delay_s": 600.0}


async def attempt(rpc: RpcClient, email: str, password: str, client: str = "192.0.2.1") -> str:
    """ "ok", or the error code of the login."""
    try:
        await rpc.call(calls.AUTH_LOGIN, {"email": email, "password": password, "client": client})
    except RpcError as exc:
        return exc.code
    return "ok"


def email() -> str:
    return f"t{uuid.uuid4().hex[:8]}@example.com"


async def test_guessing_one_account_locks_it_with_retry_after_and_others_are_unaffected(
    run_auth: RunAuth, caplog: pytest.LogCaptureFixture
) -> None:
    async with run_auth(login_account_free_failures=3, **LOCK) as rpc:
        victim, bystander = email(), email()
        victim_id = await new_user(rpc, victim)
        await new_user(rpc, bystander)
        with caplog.at_level(logging.WARNING, logger="auth"):
            # Three free failures, a fourth that goes ahead and locks, then refusals.
            assert [await attempt(rpc, victim, f"guess {i}") for i in range(4)] == ["unauthorized"] * 4
        with pytest.raises(RpcError) as locked:
            await rpc.call(calls.AUTH_LOGIN, {"email": victim, "password": PASSWORD})
        assert locked.value.code == "rate_limited"
        assert locked.value.detail == "Too many failed logins; try again later"
        assert 1 <= (locked.value.retry_after_s or 0) <= 600
        # The same bucket for any spelling of the email.
        assert await attempt(rpc, victim.upper(), PASSWORD) == "rate_limited"
        assert await attempt(rpc, bystander, PASSWORD) == "ok"

        failed = [r for r in caplog.records if r.getMessage() == "login failed"]
        assert len(failed) == 4
        assert {getattr(r, "client", None) for r in failed} == {"192.0.2.1"}
        assert all("guess" not in str(r.__dict__) for r in failed)  # never the password
        audit = await eventually(
            lambda: rpc.call(calls.AUDIT_LIST, {"user_id": str(victim_id)}),
            lambda entries: len(entries) == 4,
        )
        assert {(e["action"], e["detail"]["client"]) for e in audit} == {("user.login_failed", "192.0.2.1")}


async def test_an_unknown_email_is_throttled_like_a_real_one(run_auth: RunAuth) -> None:
    async with run_auth(login_account_free_failures=2, **LOCK) as rpc:
        nobody = email()
        assert [await attempt(rpc, nobody, "x") for _ in range(4)] == [
            "unauthorized",
            "unauthorized",
            "unauthorized",
            "rate_limited",
        ]


async def test_parallel_guessers_spend_no_hashing_once_locked_and_a_bystander_logs_in(
    run_auth: RunAuth,
) -> None:
    async with run_auth(login_account_free_failures=5, **LOCK) as rpc:
        victim, bystander = email(), email()
        await new_user(rpc, victim)
        await new_user(rpc, bystander)
        guesses = [attempt(rpc, victim, f"guess {i}") for i in range(32)]
        results = await asyncio.gather(*guesses, attempt(rpc, bystander, PASSWORD, "198.51.100.9"))
    *guessed, honest = results
    assert honest == "ok"
    # Refused before hashing: one check at a time per account, and at most the free failures
    # plus the one that locks were ever checked.
    checked = guessed.count("unauthorized")
    assert 1 <= checked <= 6
    assert guessed.count("rate_limited") == 32 - checked


async def test_one_address_guessing_many_accounts_is_throttled_other_addresses_are_not(
    run_auth: RunAuth,
) -> None:
    async with run_auth(login_address_free_failures=3, **LOCK) as rpc:
        honest = email()
        await new_user(rpc, honest)
        results = [await attempt(rpc, email(), "x", client="203.0.113.5") for _ in range(5)]
        assert results == ["unauthorized"] * 4 + ["rate_limited"]
        assert await attempt(rpc, honest, PASSWORD, client="203.0.113.5") == "rate_limited"
        assert await attempt(rpc, honest, PASSWORD, client="203.0.113.6") == "ok"


async def test_a_successful_login_clears_the_account_count(run_auth: RunAuth) -> None:
    async with run_auth(login_account_free_failures=2, **LOCK) as rpc:
        user = email()
        await new_user(rpc, user)
        for _ in range(3):  # never more than two failures in a row
            assert await attempt(rpc, user, "wrong") == "unauthorized"
            assert await attempt(rpc, user, "wrong") == "unauthorized"
            assert await attempt(rpc, user, PASSWORD) == "ok"


async def test_rejected_api_keys_are_logged_with_the_address_never_the_key(
    rpc: RpcClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "ow_" + "k" * 40
    with caplog.at_level(logging.WARNING, logger="auth"), pytest.raises(RpcError) as exc:
        await rpc.call(calls.AUTH_VERIFY_KEY, {"api_key": secret, "client": "192.0.2.44"})
    assert exc.value.code == "unauthorized"
    rejected = [r for r in caplog.records if r.getMessage() == "api key rejected"]
    assert [getattr(r, "client", None) for r in rejected] == ["192.0.2.44"]
    assert secret not in caplog.text and all(secret not in str(r.__dict__) for r in rejected)


async def test_forgotten_buckets_are_dropped_from_the_table(run_auth: RunAuth, database_url: str) -> None:
    async with run_auth(login_failure_memory_s=0.05) as rpc:
        nobody = email()
        assert await attempt(rpc, nobody, "x", client="192.0.2.99") == "unauthorized"
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        buckets = text("SELECT count(*) FROM auth.login_failures WHERE bucket = ANY(:b)")
        names = [account_bucket(nobody), address_bucket("192.0.2.99")]
        async with sessions() as session:
            assert (await session.execute(buckets, {"b": names})).scalar_one() == 2
        await asyncio.sleep(0.1)  # past the 50 ms memory: the point under test
        throttle = LoginThrottle(*(Policy(5, 1.0, 900.0, 0.05),) * 2)
        async with sessions.begin() as session:
            assert await throttle.forget_old(session) >= 2
        async with sessions() as session:
            assert (await session.execute(buckets, {"b": names})).scalar_one() == 0
    finally:
        await engine.dispose()
