"""`opswire auth`: run the auth service with settings from the environment."""

from __future__ import annotations

from auth.app import create_app
from auth.settings import AuthSettings
from opswire.runtime.service import run_service


def main() -> None:
    run_service("auth", AuthSettings, create_app)


if __name__ == "__main__":
    main()
