"""Whether a new command may start: its deadline, the in-flight quotas, Idempotency-Keys.

- **Deadline.** A command waits `timeout_s + grace` for its agent, and never past the
  caller's `reply_by` (the gateway's REST wait): the service answers before the caller
  gives up, and a request that arrives after that is refused unrun ("unavailable").
- **Quotas.** In-flight commands per server and per user, counted in the database
  across replicas (CommandStore.admit). Over → "rate_limited" (HTTP 429) with
  Retry-After: when the soonest of them reaches its deadline, at most
  `MAX_RETRY_AFTER_S` (most commands end long before their deadline).
- **Idempotency-Key.** A retry with the same key (same user and server) gets the first
  command's record back and runs nothing. While the first is still pending the retry is
  "conflict" (409 with Retry-After), as the IETF Idempotency-Key draft proposes: it
  cannot wait on another replica's future, and holding the caller would pin what the
  quotas protect. The same key on a different request is "invalid" (422).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from commands.models import CommandRecord
from commands.store import OverQuota, Quotas
from opswire.contract.types import utc_now
from opswire.runtime.rpc import RpcError

MAX_RETRY_AFTER_S = 30
IN_PROGRESS_RETRY_AFTER_S = 1
TOO_LATE = "The request arrived after its caller stopped waiting; nothing was run"


def deadline_for(timeout_s: int, grace_s: float, reply_by: datetime | None) -> datetime:
    """When this command is given up; RpcError("unavailable") if the caller already has."""
    now = utc_now()
    deadline = now + timedelta(seconds=timeout_s + grace_s)
    if reply_by is None:
        return deadline
    if reply_by <= now:
        raise RpcError("unavailable", TOO_LATE)
    return min(deadline, reply_by)


def over_quota(exc: OverQuota, quotas: Quotas) -> RpcError:
    limit = quotas.per_server if exc.scope == "server" else quotas.per_user
    retry_after = MAX_RETRY_AFTER_S
    if exc.until is not None:
        seconds = math.ceil((exc.until - utc_now()).total_seconds())
        retry_after = min(max(seconds, 1), MAX_RETRY_AFTER_S)
    return RpcError(
        "rate_limited",
        f"Too many commands in flight for this {exc.scope} (limit {limit}); try again later",
        retry_after_s=retry_after,
    )


def replayed(first: CommandRecord, retry: CommandRecord) -> CommandRecord:
    """The first command's record for a retry with its Idempotency-Key, or RpcError."""
    if (first.kind, first.command, first.params or {}) != (retry.kind, retry.command, retry.params or {}):
        raise RpcError("invalid", "This Idempotency-Key was already used for a different request")
    if first.status == "pending":
        raise RpcError(
            "conflict",
            "A request with this Idempotency-Key is still in progress",
            retry_after_s=IN_PROGRESS_RETRY_AFTER_S,
        )
    return first
