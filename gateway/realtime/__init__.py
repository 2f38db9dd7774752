"""WebSockets: agent sessions and dashboard fan-out. Placeholder until they land."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.state import GatewayState

ws_router = APIRouter()


class Realtime:
    @classmethod
    async def start(cls, state: GatewayState) -> Realtime:
        return cls()

    async def stop(self) -> None:
        return None
