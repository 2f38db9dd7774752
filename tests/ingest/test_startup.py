"""A start-up that fails (database unreachable, NATS refusing the credentials) ends in
one clear line and exit 1, and shutting down after it never raises."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

from ingest.app import create_app
from ingest.settings import IngestSettings
from opswire.runtime import service
from opswire.runtime.service import StartupError
from tests.helpers.backends import Namespace, role_env

# Nothing listens on port 1.
UNREACHABLE_DB = "postgresql://opswire:secret-pw@127.0.0.1:1/opswire"


def service_env(nats_url: str, namespace: Namespace, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSWIRE_", "NATS_", "DATABASE_"))}
    return env | role_env(nats_url, "ingest") | namespace.env() | {"DATABASE_URL": database_url}


def test_unreachable_database_is_one_line_and_exit_1(nats_url: str, namespace: Namespace) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "opswire", "ingest"],
        env=service_env(nats_url, namespace, UNREACHABLE_DB),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("opswire ingest: cannot reach the database at "), done.stderr
    assert "127.0.0.1:1" in lines[-1] and "secret-pw" not in done.stderr
    assert "Traceback" not in done.stderr


async def test_stop_after_a_failed_start_does_not_raise(nats_url: str, namespace: Namespace) -> None:
    identity = role_env(nats_url, "ingest")
    settings = IngestSettings.model_validate(
        {
            "nats_url": identity["NATS_URL"],
            "nats_user": identity.get("OPSWIRE_NATS_USER"),
            "nats_password": identity.get("OPSWIRE_NATS_PASSWORD"),
            "database_url": UNREACHABLE_DB,
            "subject_prefix": namespace.prefix,
            "stream_prefix": namespace.stream_prefix,
        }
    )
    app = create_app(settings)
    with pytest.raises(StartupError, match="cannot reach the database"):
        await app.start()
    await app.stop()
    gc.collect()
    await app.stop()  # twice is fine too


# nats-py leaves the socket of a refused connection to the garbage collector; it is
# collected inside this test so the warning does not land on a later one.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_refused_credentials_are_one_line(
    nats_url: str, namespace: Namespace, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "STARTUP_TIMEOUT_S", 2.0)
    identity = role_env(nats_url, "ingest")
    settings = IngestSettings.model_validate(
        {
            "nats_url": identity["NATS_URL"],
            "nats_user": "ingest",
            "nats_password": "wrong",
            "database_url": database_url,
            "subject_prefix": namespace.prefix,
            "stream_prefix": namespace.stream_prefix,
        }
    )
    app = create_app(settings)
    with pytest.raises(StartupError, match="cannot connect to NATS at "):
        await app.start()
    await app.stop()
    gc.collect()
