"""Alert rules as a pure state machine: one sample in, at most one transition out.

A breach starts at the first sample past the line (`breach_since`) and fires
once the condition has held for `duration_s`. It only clears when the value is
past the line by the hysteresis margin, so a value hovering around the line
neither fires twice nor flaps. `latched` marks that the breach already has an
alert (active or resolved by hand): no second alert until the breach clears.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ingest.samplecheck import CheckedSample
from opswire.contract.telemetry import MetricsSample

Fire = Literal["fire"]
Clear = Literal["clear"]


@dataclass(frozen=True)
class Rule:
    metric_type: str
    comparison: str
    threshold_value: float
    duration_s: int


@dataclass
class RuleState:
    breach_since: datetime | None = None
    latched: bool = False


def metric_value(sample: MetricsSample | CheckedSample, metric_type: str) -> float | None:
    """The value a rule watches; None when the sample does not carry it (no disks)."""
    if metric_type == "cpu":
        return sample.cpu_percent
    if metric_type == "memory":
        return sample.memory_percent
    if metric_type == "disk":
        return max((disk.percent for disk in sample.disk_usage), default=None)
    return None


def breaching(rule: Rule, value: float) -> bool:
    if rule.comparison == "gt":
        return value > rule.threshold_value
    return value < rule.threshold_value


def cleared(rule: Rule, value: float, hysteresis: float) -> bool:
    # The end of the 0-100 scale always counts as clear, so a margin wider than the
    # distance to the edge cannot keep a breach open forever.
    if rule.comparison == "gt":
        return value < rule.threshold_value - hysteresis or value <= 0
    return value > rule.threshold_value + hysteresis or value >= 100


def step(
    rule: Rule, state: RuleState, timestamp: datetime, value: float, hysteresis: float
) -> Fire | Clear | None:
    """Advance `state` by one sample (samples must come in time order)."""
    in_breach = state.breach_since is not None or state.latched
    if in_breach and cleared(rule, value, hysteresis):
        state.breach_since = None
        state.latched = False
        return "clear"
    if not breaching(rule, value):
        return None
    if state.breach_since is None:
        state.breach_since = timestamp
    if state.latched:
        return None
    if (timestamp - state.breach_since).total_seconds() >= rule.duration_s:
        state.latched = True
        return "fire"
    return None
