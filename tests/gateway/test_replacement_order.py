"""Two agents of one server announcing themselves at once: exactly one survives."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from gateway.realtime.sessions import _older
from opswire.contract.events import AgentControl

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _session(connection_id: str, at: datetime) -> Any:
    return SimpleNamespace(connection_id=connection_id, connected_at=at)


def _announce(session: Any) -> AgentControl:
    return AgentControl(
        reason="replaced", keep_connection_id=session.connection_id, connected_at=session.connected_at
    )


def test_crossing_announcements_close_exactly_one() -> None:
    for a, b in [
        (_session("a", T0), _session("b", T0 + timedelta(milliseconds=1))),
        (_session("b", T0), _session("a", T0)),  # same instant: the id breaks the tie
    ]:
        a_closes = _older(a, _announce(b))
        b_closes = _older(b, _announce(a))
        assert a_closes != b_closes


def test_the_announcer_itself_and_newer_connections_stay() -> None:
    old, new = _session("old", T0), _session("new", T0 + timedelta(seconds=1))
    assert _older(old, _announce(new))
    assert not _older(new, _announce(new))
    assert not _older(new, _announce(old))
    legacy = AgentControl(reason="replaced", keep_connection_id="new")  # no timestamp: all others close
    assert _older(old, legacy)
