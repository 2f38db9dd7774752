"""WebSockets: agent sessions (`agents.py`) and dashboard fan-out (`dashboards.py`, `hub.py`).

`Realtime` holds what lives behind them; the app's lifespan starts and stops it.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.realtime import agents, dashboards
from gateway.realtime.runtime import Realtime

ws_router = APIRouter()
ws_router.include_router(agents.router)
ws_router.include_router(dashboards.router)

__all__ = ["Realtime", "ws_router"]
