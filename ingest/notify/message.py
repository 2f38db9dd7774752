"""What a notification says: a human title and a machine-friendly JSON body.

The body (documented in docs/dashboard.md) is the same for every channel:
`{event, alert_id, server_id, metric, value, threshold, comparison, state, since,
resolved_at, message, link}`.
"""

from __future__ import annotations

from typing import Any

from opswire.contract.events import AlertEvent

_METRICS = {"cpu": "CPU", "memory": "Memory", "disk": "Disk", "offline": "Offline"}


def server_link(public_url: str, server_id: str) -> str:
    """The dashboard page of the server (`#/servers/<id>`), under OPSWIRE_PUBLIC_URL."""
    return f"{public_url.rstrip('/')}/#/servers/{server_id}"


def title(event: AlertEvent) -> str:
    state = "FIRING" if event.event == "fired" else "RESOLVED"
    return f"[opswire] {state} {_METRICS.get(event.metric_type, event.metric_type)}: {event.message}"


def body(event: AlertEvent, public_url: str) -> dict[str, Any]:
    server_id = str(event.server_id)
    return {
        "event": event.event,
        "alert_id": str(event.id),
        "server_id": server_id,
        "metric": event.metric_type,
        "value": event.value,
        "threshold": event.threshold_value,
        "comparison": event.comparison,
        "state": event.status,
        "since": event.created_at.isoformat(),
        "resolved_at": event.resolved_at.isoformat() if event.resolved_at else None,
        "message": event.message,
        "link": server_link(public_url, server_id),
    }


def test_body(public_url: str) -> tuple[str, dict[str, Any]]:
    """What "send test" sends: the same shape, so a receiver can be checked end to end."""
    return "[opswire] Test notification", {
        "event": "test",
        "message": "This channel receives opswire alerts.",
        "link": public_url,
    }
