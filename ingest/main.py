"""`opswire ingest`: run one ingest process."""

from __future__ import annotations

from ingest.app import create_app
from ingest.settings import IngestSettings
from opswire.runtime.service import run_service


def main() -> None:
    run_service("ingest", IngestSettings, create_app)


if __name__ == "__main__":
    main()
