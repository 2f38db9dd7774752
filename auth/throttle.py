"""Failed-login throttling shared by every auth replica: one row per bucket in PostgreSQL.

A bucket is an account (`account:<email>`, whether or not the account exists, so a lock
tells nothing) or a client address (`address:<ip>`). An attempt is counted *before* the
password is checked, in one upsert that also refuses a locked bucket: 32 parallel guesses
at one account cannot all slip past the check, and a refused guess costs no argon2 work.
After `free_failures` uncleared attempts each further one locks the bucket for a delay
that doubles (base, 2 x base, ... up to max_delay); while locked, attempts get 429 with
Retry-After. A successful login clears the account bucket and takes its own attempt back
off the address bucket. Failures are forgotten after `memory_s` without another one.

On top of that each replica checks one password per account at a time (`OneAtATime`):
parallel guesses at one account cost one argon2 hash, not many, so CPU stays for the
other accounts' logins.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.settings import AuthSettings
from opswire.contract.types import utc_now
from opswire.runtime.rpc import RpcError

TOO_MANY_FAILURES = "Too many failed logins; try again later"

# The bucket's count after this attempt (in ON CONFLICT, f.* is the row as it was).
_NEXT = "(CASE WHEN f.last_failure_at < :forget_before THEN 1 ELSE f.failures + 1 END)"
# One statement, so it is atomic and holds the row lock only while it runs: the attempt is
# counted and, past the free failures, the lock set, unless the bucket is locked already
# (then nothing is updated and nothing returned).
_COUNT = text(f"""
    INSERT INTO auth.login_failures AS f (bucket, failures, last_failure_at, locked_until)
    VALUES (:bucket, 1, :now, NULL)
    ON CONFLICT (bucket) DO UPDATE SET
        failures = {_NEXT},
        last_failure_at = :now,
        locked_until = CASE WHEN {_NEXT} > :free THEN :now + make_interval(
            secs => LEAST(:max_delay, :base_delay * power(2, LEAST({_NEXT} - :free - 1, 40)))
        ) END
    WHERE f.locked_until IS NULL OR f.locked_until <= :now
    RETURNING failures
""")
_LOCKED_UNTIL = text("SELECT locked_until FROM auth.login_failures WHERE bucket = :bucket")
_FORGET = text(
    "DELETE FROM auth.login_failures WHERE last_failure_at < :forget_before"
    " AND (locked_until IS NULL OR locked_until <= :now)"
)
_CLEAR = text("DELETE FROM auth.login_failures WHERE bucket = :bucket")
_TAKE_BACK = text(
    "UPDATE auth.login_failures SET failures = GREATEST(failures - 1, 0) WHERE bucket = :bucket"
)


@dataclass(frozen=True)
class Policy:
    free_failures: int
    base_delay_s: float
    max_delay_s: float
    memory_s: float


@dataclass(frozen=True)
class LoginThrottle:
    account: Policy
    address: Policy

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> LoginThrottle:
        def policy(free: int) -> Policy:
            return Policy(
                free, settings.login_base_delay_s, settings.login_max_delay_s, settings.login_failure_memory_s
            )

        return cls(policy(settings.login_account_free_failures), policy(settings.login_address_free_failures))

    async def count_attempt(
        self, sessions: async_sessionmaker[AsyncSession], email: str, client: str | None
    ) -> float | None:
        """Count one attempt on the address and account buckets; seconds to wait if locked.

        Each bucket is one short transaction: parallel attempts from one address queue on
        its row for one statement, not for a whole login. A refused attempt still counts
        against its address.
        """
        buckets = [(address_bucket(client), self.address)] if client else []
        buckets.append((account_bucket(email), self.account))
        for bucket, policy in buckets:
            async with sessions.begin() as session:
                wait = await _count(session, bucket, policy)
            if wait is not None:
                return wait
        return None

    async def forget_old(self, session: AsyncSession) -> int:
        """Drop buckets with nothing left to remember (guessed emails would pile up)."""
        now = utc_now()
        memory_s = max(self.account.memory_s, self.address.memory_s)
        result = await session.execute(
            _FORGET, {"now": now, "forget_before": now - timedelta(seconds=memory_s)}
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def succeeded(self, session: AsyncSession, email: str, client: str | None) -> None:
        await session.execute(_CLEAR, {"bucket": account_bucket(email)})
        if client:
            await session.execute(_TAKE_BACK, {"bucket": address_bucket(client)})


class OneAtATime:
    """The accounts whose password this replica is checking right now."""

    def __init__(self) -> None:
        self._busy: set[str] = set()

    @contextmanager
    def claim(self, email: str) -> Iterator[bool]:
        """True (and held until the block ends) unless a check for `email` is under way."""
        key = account_bucket(email)
        if key in self._busy:
            yield False
            return
        self._busy.add(key)
        try:
            yield True
        finally:
            self._busy.discard(key)


def account_bucket(email: str) -> str:
    return f"account:{email.strip().lower()}"


def address_bucket(client: str) -> str:
    return f"address:{client}"


def retry_after(wait_s: float) -> int:
    """Whole seconds for Retry-After, never 0 (0 would invite an immediate retry)."""
    return max(1, math.ceil(wait_s))


def throttled(wait_s: float) -> RpcError:
    """The typed error the gateway turns into 429 with Retry-After."""
    return RpcError("rate_limited", TOO_MANY_FAILURES, retry_after_s=retry_after(wait_s))


async def _count(session: AsyncSession, bucket: str, policy: Policy) -> float | None:
    now = utc_now()
    counted = await session.execute(
        _COUNT,
        {
            "bucket": bucket,
            "now": now,
            "forget_before": now - timedelta(seconds=policy.memory_s),
            "free": policy.free_failures,
            "base_delay": policy.base_delay_s,
            "max_delay": policy.max_delay_s,
        },
    )
    if counted.scalar_one_or_none() is not None:
        return None
    # Locked: nothing was counted.
    until: datetime | None = (await session.execute(_LOCKED_UNTIL, {"bucket": bucket})).scalar_one_or_none()
    if until is None:  # cleared by a successful login just now
        return None
    return max(0.0, float((until - now).total_seconds()))
