"""`opswire commands`: run one commands service process."""

from __future__ import annotations

from commands.app import create_app
from commands.settings import CommandsSettings
from opswire.runtime.service import run_service


def main() -> None:
    run_service("commands", CommandsSettings, create_app)


if __name__ == "__main__":
    main()
