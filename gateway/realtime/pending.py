"""Commands sent to one agent and still waiting for its response.

Bounded and expiring: an agent that never answers cannot make the gateway
remember reply subjects forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PendingCommand:
    command_id: str
    reply_subject: str
    expires_at: float
    # Where the answer goes if nobody waits on reply_subject any more (AgentDelivery).
    fallback_subject: str | None = None


class PendingCommands:
    def __init__(self, limit: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._clock = clock
        self._by_id: dict[str, PendingCommand] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(
        self, command_id: str, reply_subject: str, ttl_s: float, fallback_subject: str | None = None
    ) -> str | None:
        """Remember a command; returns why not (duplicate id, too many) or None on success."""
        now = self._clock()
        current = self._by_id.get(command_id)
        if current is not None and current.expires_at > now:
            return "Duplicate command_id"
        if len(self._by_id) >= self._limit:
            self._purge(now)
            if len(self._by_id) >= self._limit:
                return "Too many pending commands for this agent"
        self._by_id[command_id] = PendingCommand(command_id, reply_subject, now + ttl_s, fallback_subject)
        return None

    def pop(self, command_id: str) -> PendingCommand | None:
        """The live command with that id, forgotten from now on; None if unknown or expired."""
        pending = self._by_id.pop(command_id, None)
        if pending is None or pending.expires_at <= self._clock():
            return None
        return pending

    def drain(self) -> list[PendingCommand]:
        """Every remembered command (expired ones too: their callers may still listen)."""
        pending, self._by_id = list(self._by_id.values()), {}
        return pending

    def _purge(self, now: float) -> None:
        self._by_id = {cid: p for cid, p in self._by_id.items() if p.expires_at > now}
