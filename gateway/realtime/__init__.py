"""WebSockets: agent sessions (`agents.py`) and dashboard fan-out (`dashboards.py`, `hub.py`).

Dashboard sockets are routes of `ws_router`; agent sockets are served by the
`AgentSocketPath` layer around the whole app.

`Realtime` holds what lives behind them; the app's lifespan starts and stops it.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.realtime import dashboards
from gateway.realtime.agents import AgentSocketPath
from gateway.realtime.runtime import Realtime

ws_router = APIRouter()
ws_router.include_router(dashboards.router)

__all__ = ["AgentSocketPath", "Realtime", "ws_router"]
