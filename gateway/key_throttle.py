"""Rejected `X-API-Key` checks per client address (`GET /api-keys/me`, docs/chatops-agents.md).

Keys are 256 random bits, so this is not about guessing them: it keeps one
address from making auth look up hashes as fast as it can send requests. An
honest agent asks once per (re)connect and its key is valid, so only
rejections count. Kept in each gateway's memory, bounded in addresses.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0
MAX_ADDRESSES = 10_000


class FailureWindow:
    """At most `limit` rejections per address in any `window_s`; then callers wait."""

    def __init__(
        self,
        limit: int,
        window_s: float = WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window_s = window_s
        self._max_addresses = max_addresses
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until this address may be checked again; None if it may now."""
        failures = self._failures.get(address)
        if failures is None:
            return None
        horizon = self._clock() - self._window_s
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        if len(failures) < self._limit:
            return None
        return max(1, math.ceil(failures[0] - horizon))

    def failed(self, address: str) -> None:
        failures = self._failures.pop(address, None) or deque(maxlen=self._limit)
        failures.append(self._clock())
        self._failures[address] = failures  # newest last: the oldest address goes first
        if len(self._failures) > self._max_addresses:
            del self._failures[next(iter(self._failures))]
