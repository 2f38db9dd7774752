"""`opswire commands`: run one commands service process."""

from __future__ import annotations

import asyncio

from commands.app import create_app
from commands.settings import CommandsSettings
from opswire.runtime.logs import configure_logging
from opswire.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(CommandsSettings)
    configure_logging(settings.log_level)
    asyncio.run(create_app(settings).run())
