"""Evaluating alert thresholds against a stored batch of samples."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from ingest.decode import DecodedSample
from ingest.events import AlertEventKind, AlertPublisher
from ingest.models import Alert, Threshold
from ingest.rules import Rule, RuleState, metric_value, step
from opswire.contract.types import utc_now

_LABELS = {"cpu": "CPU usage", "memory": "Memory usage", "disk": "Disk usage", "offline": "Offline"}
_WORDS = {"gt": "above", "lt": "below"}


def rule_of(threshold: Threshold) -> Rule:
    return Rule(threshold.metric_type, threshold.comparison, threshold.threshold_value, threshold.duration_s)


def alert_message(threshold: Threshold, value: float) -> str:
    text = (
        f"{_LABELS.get(threshold.metric_type, threshold.metric_type)} {value:.1f}% is "
        f"{_WORDS.get(threshold.comparison, threshold.comparison)} {threshold.threshold_value:g}%"
    )
    return text + (f" for {threshold.duration_s} s" if threshold.duration_s else "")


def new_alert(threshold: Threshold, value: float) -> Alert:
    return Alert(
        user_id=threshold.user_id,
        server_id=threshold.server_id,
        threshold_id=threshold.id,
        metric_type=threshold.metric_type,
        comparison=threshold.comparison,
        threshold_value=threshold.threshold_value,
        value=value,
        status="active",
        message=alert_message(threshold, value),
        created_at=utc_now(),
    )


def resolve(alert: Alert, by: uuid.UUID | None) -> None:
    alert.status = "resolved"
    alert.resolved_at = utc_now()
    alert.resolved_by = by


async def active_alerts(session: AsyncSession, threshold_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Alert]:
    if not threshold_ids:
        return {}
    rows = await session.execute(
        select(Alert).where(col(Alert.threshold_id).in_(threshold_ids), col(Alert.status) == "active")
    )
    return {alert.threshold_id: alert for alert in rows.scalars() if alert.threshold_id}


class AlertEvaluator:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: AlertPublisher,
        hysteresis: float,
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._hysteresis = hysteresis

    async def evaluate(self, samples: Sequence[DecodedSample]) -> None:
        """Run every enabled threshold of the batch's servers over its samples, in time order.

        Samples at or before a threshold's `evaluated_until` were seen already
        (a redelivered batch, or a late sample) and are skipped, so running a
        batch twice changes nothing.
        """
        by_server: dict[uuid.UUID, list[DecodedSample]] = defaultdict(list)
        for item in sorted(samples, key=lambda s: s.sample.timestamp):
            by_server[item.server_id].append(item)
        changes: list[tuple[Alert, AlertEventKind]] = []
        async with self._sessions.begin() as session:
            # Row locks: replicas and threshold edits never evaluate the same rule at once.
            rows = await session.execute(
                select(Threshold)
                .where(
                    col(Threshold.server_id).in_(list(by_server)),
                    col(Threshold.enabled),
                    # `offline` rules follow presence events (ingest/notify/offline.py), not samples.
                    col(Threshold.metric_type) != "offline",
                )
                .order_by(col(Threshold.id))
                .with_for_update()
            )
            thresholds = list(rows.scalars())
            if not thresholds:
                return
            active = await active_alerts(session, [t.id for t in thresholds if t.latched])
            for threshold in thresholds:
                changes += self._run(threshold, by_server[threshold.server_id], active, session)
        await self._publisher.publish_all(changes)

    def _run(
        self,
        threshold: Threshold,
        samples: list[DecodedSample],
        active: dict[uuid.UUID, Alert],
        session: AsyncSession,
    ) -> list[tuple[Alert, AlertEventKind]]:
        rule = rule_of(threshold)
        state = RuleState(threshold.breach_since, threshold.latched)
        changes: list[tuple[Alert, AlertEventKind]] = []
        for item in samples:
            timestamp = item.sample.timestamp
            if threshold.evaluated_until is not None and timestamp <= threshold.evaluated_until:
                continue
            threshold.evaluated_until = timestamp
            value = metric_value(item.sample, threshold.metric_type)
            if value is None:
                continue
            transition = step(rule, state, timestamp, value, self._hysteresis)
            if transition == "fire":
                alert = new_alert(threshold, value)
                session.add(alert)
                active[threshold.id] = alert
                changes.append((alert, "fired"))
            elif transition == "clear" and threshold.id in active:
                alert = active.pop(threshold.id)
                resolve(alert, by=None)
                changes.append((alert, "resolved"))
        threshold.breach_since = state.breach_since
        threshold.latched = state.latched
        return changes
