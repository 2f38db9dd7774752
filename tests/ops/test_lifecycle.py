"""Lifecycles (DESIGN §10): SIGTERM/SIGINT are honoured while a process still waits for NATS,
and an unreachable database is one line and exit 1.

"Waiting for NATS" is made certain, not timed: the test listens on a socket that accepts the
process's connection and never says a word, so the process is inside its bounded NATS wait
(30 s) when the signal is sent. Exit 0 well before that bound shows the signal was honoured:
the wait running out would be exit 1 with a "cannot reach NATS" line.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from opswire.launcher.embedded import free_port
from opswire.runtime.permissions import SERVICE_ROLES
from tests.helpers.backends import Namespace, role_env

# Far below the 30 s start-up bound, far above a clean stop even on a loaded machine.
STOP_WITHIN_S = 20


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSWIRE_", "NATS_", "DATABASE_"))}
    return env | {
        "OPSWIRE_JWT_SECRET": secrets.token_urlsafe(48),
        "OPSWIRE_PORT": "0",
        "OPSWIRE_METRICS_PORT": "0",
        **values,
    }


@pytest.fixture
def silent_nats() -> Iterator[socket.socket]:
    """A 'NATS server' that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("role", SERVICE_ROLES)
async def test_a_stop_signal_is_honoured_while_waiting_for_nats(
    role: str, sig: signal.Signals, silent_nats: socket.socket
) -> None:
    host, port = silent_nats.getsockname()
    env = _env(
        NATS_URL=f"nats://{host}:{port}", DATABASE_URL=f"postgresql://opswire@127.0.0.1:{free_port()}/x"
    )
    process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; waited for in a thread
        [sys.executable, "-m", "opswire", role],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        connection, _ = await asyncio.to_thread(silent_nats.accept)  # it is waiting for NATS now
        connection.close()
        process.send_signal(sig)
        output, _ = await asyncio.to_thread(process.communicate, timeout=STOP_WITHIN_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "Traceback" not in output and "cannot reach NATS" not in output, output


@pytest.mark.parametrize("role", ["auth", "commands"])  # ingest: tests/ingest/test_startup.py
def test_an_unreachable_database_is_one_line_and_exit_1(
    role: str, nats_url: str, namespace: Namespace
) -> None:
    nowhere = free_port()  # closed again: nothing listens there
    env = _env(
        **role_env(nats_url, role),
        **namespace.env(),
        DATABASE_URL=f"postgresql://opswire:db-secret-pw@127.0.0.1:{nowhere}/opswire",
    )
    done = subprocess.run(
        [sys.executable, "-m", "opswire", role], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"opswire {role}: cannot reach the database at "), done.stderr
    assert f"127.0.0.1:{nowhere}" in last
    assert "Traceback" not in done.stderr and "db-secret-pw" not in done.stderr


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_an_ops_port_in_use_is_one_line_and_exit_1(role: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(
            NATS_URL=f"nats://127.0.0.1:{free_port()}",
            OPSWIRE_METRICS_PORT=str(port),
            DATABASE_URL=f"postgresql://opswire@127.0.0.1:{free_port()}/x",
        )
        done = subprocess.run(
            [sys.executable, "-m", "opswire", role], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"opswire {role}: cannot open the metrics port 127.0.0.1:{port}: Address already in use"
    ), done.stderr
    assert "Traceback" not in done.stderr
