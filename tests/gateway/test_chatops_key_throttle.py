"""Rejected `X-API-Key` checks per client address (GET /api-keys/me), with a test clock."""

from __future__ import annotations

from gateway.key_throttle import FailureWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_waits_once_over_the_limit_until_its_oldest_rejection_is_a_window_old() -> None:
    clock = Clock()
    window = FailureWindow(3, window_s=60, clock=clock)
    for _ in range(3):
        assert window.retry_after("10.0.0.1") is None
        window.failed("10.0.0.1")
        clock.now += 10
    # Rejections at 1000, 1010, 1020; now 1030: the first leaves the window at 1060.
    assert window.retry_after("10.0.0.1") == 30
    assert window.retry_after("10.0.0.2") is None, "other addresses are not affected"
    clock.now = 1060.5
    assert window.retry_after("10.0.0.1") is None
    window.failed("10.0.0.1")
    assert window.retry_after("10.0.0.1") == 10  # 1010 leaves at 1070
    clock.now = 2000
    assert window.retry_after("10.0.0.1") is None
    assert "10.0.0.1" not in window._failures, "forgotten once nothing is left in the window"


def test_the_addresses_remembered_are_bounded_oldest_first() -> None:
    clock = Clock()
    window = FailureWindow(1, max_addresses=100, clock=clock)
    for i in range(150):
        window.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(window._failures) == 100
    assert window.retry_after("10.0.0.0") is None, "the oldest were forgotten"
    assert window.retry_after("10.0.0.149") is not None
