"""Verifying API keys in batches: a fleet that connects at once costs a few queries, not one
transaction per agent.

`auth.verify_key` requests that arrive while a lookup is running wait for the next one,
which takes all of them in one `SELECT … WHERE key_hash = ANY(…)` and stamps their
`last_used_at` in the same transaction (not waiting for the disk: the stamp is
informational, a crash may lose the newest one, nothing else). A lone request is looked
up at once — batching adds no delay, it only takes what queued up meanwhile. A database
error fails every request of that batch, as it would have failed each alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from auth.models import ApiKey, Server
from auth.store import hash_api_key
from opswire.contract.types import utc_now

# One query's worth; a larger queue is taken in several batches, one after another.
MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class KeyOwner:
    key_id: uuid.UUID
    key_name: str
    server_id: uuid.UUID
    user_id: uuid.UUID


class KeyChecker:
    def __init__(self, sessions: Callable[[], async_sessionmaker[AsyncSession]]) -> None:
        self._sessions = sessions  # the service's, once it has started
        self._waiting: dict[str, list[asyncio.Future[KeyOwner | None]]] = {}
        self._runner: asyncio.Task[None] | None = None

    async def owner(self, api_key: str) -> KeyOwner | None:
        """Who the active key with this value belongs to (its use is stamped); None if nobody."""
        future: asyncio.Future[KeyOwner | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(hash_api_key(api_key), []).append(future)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="opswire-auth-key-check")
        return await future

    async def _run(self) -> None:
        while self._waiting:
            batch: dict[str, list[asyncio.Future[KeyOwner | None]]] = {}
            for digest in list(self._waiting)[:MAX_BATCH]:
                batch[digest] = self._waiting.pop(digest)
            try:
                found = await self._look_up(list(batch))
            except Exception as exc:  # every request of the batch fails as it would alone
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for digest, futures in batch.items():
                for future in futures:
                    if not future.done():  # its caller may have gone (timeout, cancel)
                        future.set_result(found.get(digest))

    async def _look_up(self, digests: list[str]) -> dict[str, KeyOwner]:
        async with self._sessions().begin() as session:
            rows = (
                await session.execute(
                    select(
                        col(ApiKey.key_hash),
                        col(ApiKey.id),
                        col(ApiKey.name),
                        col(Server.id),
                        col(Server.owner_id),
                    )
                    .join(Server, col(Server.id) == col(ApiKey.server_id))
                    .where(col(ApiKey.key_hash).in_(digests), col(ApiKey.is_active))
                )
            ).all()
            if rows:
                await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
                await session.execute(
                    update(ApiKey)
                    .where(col(ApiKey.id).in_([row[1] for row in rows]))
                    .values(last_used_at=utc_now())
                )
        return {digest: KeyOwner(key, name, server, owner) for digest, key, name, server, owner in rows}
