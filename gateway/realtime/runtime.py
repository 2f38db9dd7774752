"""`Realtime`: everything behind the WebSockets, started and stopped by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from starlette.websockets import WebSocket

from gateway.realtime.agent_session import AgentContext
from gateway.realtime.budget import Budget
from gateway.realtime.hub import Hub, Viewer
from gateway.realtime.presence import Presence
from gateway.realtime.sessions import SessionRegistry
from gateway.realtime.wsio import GOING_AWAY, TRY_AGAIN_LATER, CloseRequest, closing
from gateway.state import GatewayState
from opswire.runtime import metrics
from opswire.runtime.publisher import Publisher

log = logging.getLogger(__name__)

SHUTDOWN = closing(GOING_AWAY, "shutting_down", "Server shutting down", reason="shutdown")
STOP_TIMEOUT_S = 5.0
CROWDED_ADDRESS = closing(
    TRY_AGAIN_LATER,
    "rate_limited",
    "Too many unauthenticated connections from this address",
    reason="too_many_unauthenticated",
)


class Realtime:
    def __init__(self, state: GatewayState) -> None:
        settings = state.settings
        self.state = state
        self.publisher = Publisher(
            state.nc, settings.publish_buffer_size, min_share=settings.publish_min_share
        )
        self.sessions = SessionRegistry(state.nc, state.subjects, settings.agent_idle_timeout_s)
        self.hub = Hub(state.nc, state.subjects, max_viewers=settings.dashboards_per_server)
        self.presence = Presence(
            state.nc,
            state.subjects,
            self.publisher,
            state.gateway_id,
            settings.heartbeat_interval_s,
            self.sessions.live_server_ids,
        )
        self.agent_context = AgentContext(
            nc=state.nc,
            subjects=state.subjects,
            publisher=self.publisher,
            presence=self.presence,
            max_frame_bytes=settings.max_frame_bytes,
            idle_timeout_s=settings.agent_idle_timeout_s,
            command_grace_s=settings.command_grace_s,
            budget=Budget(
                samples_per_s=settings.agent_samples_per_s,
                lines_per_s=settings.agent_log_lines_per_s,
                bytes_per_s=settings.agent_bytes_per_s,
                burst_s=settings.agent_budget_burst_s,
                abuse_refusals=settings.agent_abuse_refusals,
                abuse_window_s=settings.agent_abuse_window_s,
                max_frame_bytes=settings.max_frame_bytes,
            ),
        )
        self._max_unauthenticated = settings.unauthenticated_per_address
        self._unauthenticated: dict[str, int] = {}  # by client address: sockets still in their handshake
        self._dashboards: set[Viewer] = set()
        self._dashboards_gone = asyncio.Event()
        self._dashboards_gone.set()
        self._stopping = False

    @classmethod
    async def start(cls, state: GatewayState) -> Realtime:
        realtime = cls(state)
        realtime.publisher.start()
        realtime.sessions.start()
        realtime.presence.start()
        metrics.watch_gateway(
            lambda: realtime.publisher.pending,
            lambda: len(realtime.sessions.sessions()),
            lambda: len(realtime._dashboards),
        )
        return realtime

    @property
    def unauthenticated(self) -> int:
        """Sockets of every address still in their handshake."""
        return sum(self._unauthenticated.values())

    @contextlib.contextmanager
    def handshake(self, ws: WebSocket) -> Iterator[CloseRequest | None]:
        """Count a socket against its address's ceiling of unauthenticated sockets while it
        authenticates; yields the refusal instead when the address is at the ceiling."""
        address = ws.client.host if ws.client is not None else ""
        count = self._unauthenticated.get(address, 0)
        if count >= self._max_unauthenticated:
            yield CROWDED_ADDRESS
            return
        self._unauthenticated[address] = count + 1
        try:
            yield None
        finally:
            left = self._unauthenticated[address] - 1
            if left:
                self._unauthenticated[address] = left
            else:
                del self._unauthenticated[address]

    def track(self, viewer: Viewer) -> bool:
        """Register a dashboard for shutdown; False if the gateway is stopping."""
        if self._stopping:
            return False
        self._dashboards.add(viewer)
        self._dashboards_gone.clear()
        return True

    def untrack(self, viewer: Viewer) -> None:
        self._dashboards.discard(viewer)
        if not self._dashboards:
            self._dashboards_gone.set()

    async def stop(self) -> None:
        """Close every socket (1001), publish the disconnects, drain the publisher."""
        self._stopping = True
        for viewer in list(self._dashboards):
            viewer.end(SHUTDOWN)
        await self.sessions.close_all(SHUTDOWN, STOP_TIMEOUT_S)
        await self.sessions.stop()
        try:
            await asyncio.wait_for(self._dashboards_gone.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("dashboards still open at shutdown", extra={"count": len(self._dashboards)})
        await self.presence.stop()
        await self.publisher.stop(STOP_TIMEOUT_S)
