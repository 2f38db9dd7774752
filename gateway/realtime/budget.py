"""Per-connection frame budgets (DESIGN §2, §8 'Nobody can hurt anyone else').

Each agent connection may send so many samples, log lines and bytes per
second, with a burst allowance for counts so an honest agent replaying the
samples it buffered during an outage is not refused (bytes: one second's
worth). Three token buckets of two floats
each, refilled lazily when a frame arrives: no task, no timer, a few dozen
bytes per connection (a `limits` storage per connection would cost more than
the frame it guards). A connection refused too often within a window is
abusive and gets closed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Budget:
    """The limits every agent connection gets (from the gateway settings)."""

    samples_per_s: float
    lines_per_s: float
    bytes_per_s: float
    burst_s: float
    abuse_refusals: int
    abuse_window_s: float
    # Depth of the byte bucket: at least one frame of the maximum size always fits.
    max_frame_bytes: int = 0


class Meter:
    """One connection's spending against its `Budget`."""

    __slots__ = ("_at", "_budget", "_bytes", "_lines", "_refusals", "_samples", "_window_end")

    def __init__(self, budget: Budget, now: float) -> None:
        self._budget = budget
        self._samples = budget.samples_per_s * budget.burst_s
        self._lines = budget.lines_per_s * budget.burst_s
        self._bytes = self._byte_depth()
        self._at = now
        self._refusals = 0
        self._window_end = now + budget.abuse_window_s

    def _byte_depth(self) -> float:
        # One second of bytes (or one largest frame): a replay of small buffered samples fits
        # easily, while a flood of big ones gets no burst of tens of megabytes into storage.
        return max(self._budget.bytes_per_s, float(self._budget.max_frame_bytes))

    def _refill(self, now: float) -> None:
        if now == self._at:  # `take` right after `affords`, on the same clock reading
            return
        budget = self._budget
        elapsed = now - self._at
        self._at = now
        burst = budget.burst_s
        self._samples = min(self._samples + elapsed * budget.samples_per_s, budget.samples_per_s * burst)
        self._lines = min(self._lines + elapsed * budget.lines_per_s, budget.lines_per_s * burst)
        self._bytes = min(self._bytes + elapsed * budget.bytes_per_s, self._byte_depth())

    def affords(self, size: int, now: float) -> bool:
        """Whether `size` bytes are left: checked before parsing, so a flood of big frames
        over budget costs no parse."""
        self._refill(now)
        return self._bytes >= size

    def take(self, sample: bool, size: int, now: float) -> bool:
        """Spend one sample (or one log line) of `size` bytes; False (nothing spent) if over budget."""
        self._refill(now)
        count = self._samples if sample else self._lines
        if count < 1 or self._bytes < size:
            return False
        if sample:
            self._samples -= 1
        else:
            self._lines -= 1
        self._bytes -= size
        return True

    def refused(self, now: float) -> bool:
        """Count a refusal; True once refusals within the window make the connection abusive."""
        if now >= self._window_end:
            self._refusals = 0
            self._window_end = now + self._budget.abuse_window_s
        self._refusals += 1
        return self._refusals >= self._budget.abuse_refusals
