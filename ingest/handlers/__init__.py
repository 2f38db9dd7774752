"""Handlers of the ingest service, one module per resource (RPC methods and consumers)."""

from __future__ import annotations

from ingest import notify
from ingest.handlers import alerts, telemetry
from ingest.runtime import IngestRuntime


def register_handlers(runtime: IngestRuntime) -> None:
    for module in (telemetry, alerts):
        module.register(runtime)
    notify.register(runtime)
