"""`opswire auth`: run the auth service with settings from the environment."""

from __future__ import annotations

import asyncio

from auth.app import create_app
from auth.settings import AuthSettings
from opswire.runtime.logs import configure_logging
from opswire.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(AuthSettings)
    configure_logging(settings.log_level)
    asyncio.run(create_app(settings).run())


if __name__ == "__main__":
    main()
