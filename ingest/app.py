"""The ingest service: telemetry consumers, alert evaluation, history queries.

Wiring only, through the shared skeleton (opswire.runtime.service): NATS, the
`ingest` schema, the telemetry streams, the alert publisher, then the handlers.
"""

from __future__ import annotations

from faststream import FastStream

from ingest.handlers import register_handlers
from ingest.runtime import IngestRuntime
from ingest.settings import IngestSettings


def create_app(settings: IngestSettings) -> FastStream:
    runtime = IngestRuntime(settings)
    register_handlers(runtime)
    return runtime.app()
