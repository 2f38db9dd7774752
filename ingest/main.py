"""`opswire ingest`: run one ingest process."""

from __future__ import annotations

import asyncio

from ingest.app import create_app
from ingest.settings import IngestSettings
from opswire.runtime.logs import configure_logging
from opswire.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(IngestSettings)
    configure_logging(settings.log_level)
    asyncio.run(create_app(settings).run())
