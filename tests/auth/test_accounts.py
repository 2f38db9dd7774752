"""Per-user ceilings, closed registration, and `opswire user create`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from opswire.contract import rpc as calls
from opswire.runtime.rpc import RpcError
from tests.auth.conftest import RunAuth
from tests.auth.helpers import PASSWORD, new_server, new_user


def user_create(
    database_url: str, *args: str, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`opswire user create ...` as an operator runs it, against the test's database."""
    env = {**os.environ, "DATABASE_URL": database_url}
    env.pop("OPSWIRE_USER_PASSWORD", None)
    if password is not None:
        env["OPSWIRE_USER_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "opswire", "user", "create", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_ceilings_on_servers_and_keys_are_conflicts(run_auth: RunAuth) -> None:
    async with run_auth(max_servers_per_user=2, max_api_keys_per_user=1) as rpc:
        user_id = await new_user(rpc)
        first = await new_server(rpc, user_id, "a")
        await new_server(rpc, user_id, "b")
        with pytest.raises(RpcError) as servers:
            await new_server(rpc, user_id, "c")
        assert (servers.value.code, servers.value.detail) == ("conflict", "Server limit reached (2 per user)")
        key: dict[str, Any] = await rpc.call(
            calls.KEYS_CREATE, {"user_id": str(user_id), "server_id": first["id"], "name": "k1"}
        )
        with pytest.raises(RpcError) as keys:
            await rpc.call(
                calls.KEYS_CREATE, {"user_id": str(user_id), "server_id": first["id"], "name": "k2"}
            )
        assert (keys.value.code, keys.value.detail) == (
            "conflict",
            "API key limit reached (1 active keys per user)",
        )
        # A revoked key no longer counts; another user has their own allowance.
        await rpc.call(calls.KEYS_REVOKE, {"user_id": str(user_id), "key_id": key["id"]})
        await rpc.call(calls.KEYS_CREATE, {"user_id": str(user_id), "server_id": first["id"], "name": "k3"})
        assert await new_server(rpc, await new_user(rpc), "a")


async def test_closed_registration_is_forbidden(run_auth: RunAuth) -> None:
    async with run_auth(registration="closed") as rpc:
        with pytest.raises(RpcError) as exc:
            await new_user(rpc)
        assert (exc.value.code, exc.value.detail) == (
            "forbidden",
            "Registration is closed; ask an administrator for an account",
        )


async def test_user_create_makes_an_account_that_logs_in_while_registration_is_closed(
    run_auth: RunAuth, database_url: str, tmp_path: Path
) -> None:
    email = f"admin{uuid.uuid4().hex[:6]}@example.com"
    made = user_create(database_url, "--email", email.upper(), "--full-name", "Ada", password=PASSWORD)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"created user {email} (")
    assert PASSWORD not in made.stdout + made.stderr

    password_file = tmp_path / "pw"
    password_file.write_text("from a file 123\n")
    second = f"ops{uuid.uuid4().hex[:6]}@example.com"
    assert user_create(database_url, "--email", second, "--password-file", str(password_file)).returncode == 0

    again = user_create(database_url, "--email", email, password=PASSWORD)
    assert (again.returncode, again.stderr.strip()) == (1, "opswire user: Email already registered")
    weak = user_create(database_url, "--email", f"w{email}", password="short")
    assert weak.returncode == 1 and "password" in weak.stderr and "short" not in weak.stderr
    missing = user_create(database_url, "--email", f"m{email}")
    assert missing.returncode == 1 and "OPSWIRE_USER_PASSWORD" in missing.stderr

    async with run_auth(registration="closed") as rpc:
        assert await rpc.call(calls.AUTH_LOGIN, {"email": email, "password": PASSWORD})
        assert await rpc.call(calls.AUTH_LOGIN, {"email": second, "password": "from a file 123"})
