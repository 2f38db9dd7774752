"""What the ingest handlers share at run time: the shared service runtime plus the
alert publisher, built at start-up (never at import time)."""

from __future__ import annotations

from pathlib import Path

from ingest.events import AlertPublisher
from ingest.settings import IngestSettings
from opswire.runtime.nats import StreamLimits
from opswire.runtime.publisher import Publisher
from opswire.runtime.rpc import RpcError
from opswire.runtime.service import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"
# Alert events waiting for a JetStream ack (NATS briefly away) before new ones are refused.
EVENT_BUFFER = 10_000


class IngestRuntime(ServiceRuntime):
    settings: IngestSettings

    def __init__(self, settings: IngestSettings) -> None:
        super().__init__(settings, "ingest", schema="ingest", migrations=MIGRATIONS)
        self._alerts: AlertPublisher | None = None

    @property
    def publisher(self) -> AlertPublisher:
        if self._alerts is None:
            raise RpcError("unavailable", "The ingest service is not running")
        return self._alerts

    def stream_limits(self) -> StreamLimits:
        """Metrics and logs stay in their streams for the outage window ingest must survive
        (limits retention: what ingest stored still counts against max_bytes until then), never
        longer than in the database."""
        settings = self.settings
        return StreamLimits(
            max_bytes=settings.stream_max_bytes,
            telemetry_max_age_s=min(settings.telemetry_stream_max_age_s, settings.retention_days * 86_400),
        )

    async def wire(self) -> None:
        events = await self.start(Publisher(self.nc, capacity=EVENT_BUFFER))
        self._alerts = AlertPublisher(events, self.subjects)
