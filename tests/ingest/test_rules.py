"""The alert state machine on its own (pure functions, no services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.rules import Rule, RuleState, step

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def run(
    rule: Rule, values: list[float], state: RuleState | None = None, every_s: int = 5
) -> list[str | None]:
    state = state or RuleState()
    return [step(rule, state, T0 + timedelta(seconds=every_s * i), v, 2.0) for i, v in enumerate(values)]


def test_gt_fires_once_and_clears_past_the_margin() -> None:
    rule = Rule("cpu", "gt", 80, 0)
    assert run(rule, [79, 81, 90, 78.5, 81, 77.9, 80, 80.1]) == [
        None,
        "fire",
        None,
        None,
        None,
        "clear",
        None,
        "fire",
    ]


def test_lt_mirrors_gt() -> None:
    rule = Rule("memory", "lt", 10, 0)
    assert run(rule, [11, 9, 11.5, 9, 12.1, 9.9]) == [None, "fire", None, None, "clear", "fire"]


def test_duration_counts_from_the_first_breaching_sample() -> None:
    rule = Rule("cpu", "gt", 50, 15)
    # breach at 0 s, fires at 15 s; the dip to 49 (within the margin) does not restart the clock.
    assert run(rule, [60, 60, 49, 60, 60]) == [None, None, None, "fire", None]


def test_a_cleared_breach_restarts_the_clock() -> None:
    rule = Rule("cpu", "gt", 50, 10)
    assert run(rule, [60, 40, 60, 60, 60]) == [None, "clear", None, None, "fire"]


def test_a_latched_rule_does_not_fire_again_until_cleared() -> None:
    rule = Rule("cpu", "gt", 80, 0)
    state = RuleState(breach_since=T0, latched=True)  # e.g. its alert was resolved by hand
    assert run(rule, [95, 95, 70, 95], state) == [None, None, "clear", "fire"]


def test_margin_wider_than_the_scale_still_clears_at_the_edge() -> None:
    rule = Rule("cpu", "gt", 1, 0)
    assert run(rule, [5, 0.5, 0]) == ["fire", None, "clear"]
