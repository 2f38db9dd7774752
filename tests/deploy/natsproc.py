"""nats-server processes started from the shipped configs (copies with free ports only)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient

from opswire.launcher.embedded import free_port, nats_server_binary, wait_for_port
from opswire.runtime.natsconf import (
    CLIENT_PORT,
    MONITOR_PORT,
    ROUTE_PASSWORD_ENV,
    ROUTE_PORT,
    ROUTE_USER,
    STORE_DIR,
    password_env,
    route_url_env,
)
from opswire.runtime.permissions import ROLES, Role

REPO = Path(__file__).resolve().parents[2]
NATS_DIR = REPO / "deploy" / "nats"


def role_passwords() -> dict[Role, str]:
    # Letters and digits starting with a letter: what docs/security.md tells users to make.
    return {role: "p" + secrets.token_hex(16) for role in ROLES}


def password_environ(passwords: dict[Role, str]) -> dict[str, str]:
    return {password_env(role): password for role, password in passwords.items()}


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in the shipped config"
    return text.replace(old, new)


@dataclass
class Node:
    """One nats-server from a shipped config, its ports moved to free ones."""

    config: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    route_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def write_copy(self, folder: Path) -> Path:
        """The shipped text with the listen ports and the store dir changed, nothing else."""
        text = self.config.read_text()
        text = _replace_once(text, f'listen: "0.0.0.0:{CLIENT_PORT}"', f'listen: "127.0.0.1:{self.port}"')
        text = _replace_once(
            text, f'http: "127.0.0.1:{MONITOR_PORT}"', f'http: "127.0.0.1:{self.monitor_port}"'
        )
        text = _replace_once(text, f'store_dir: "{STORE_DIR}"', f'store_dir: "{folder / "store"}"')
        if self.route_port is not None:
            text = _replace_once(
                text, f'listen: "0.0.0.0:{ROUTE_PORT}"', f'listen: "127.0.0.1:{self.route_port}"'
            )
        copy = folder / self.config.name
        copy.write_text(text)
        return copy

    def start(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        copy = self.write_copy(folder)
        # Only the variables the config names, not the test runner's environment.
        env = {"PATH": os.environ.get("PATH", ""), **self.env}
        self.process = subprocess.Popen(
            [nats_server_binary(), "-c", str(copy), "-l", str(folder / "nats.log")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", self.port, 10, self.process)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running(nodes: list[Node], folder: Path) -> Iterator[list[Node]]:
    try:
        for i, node in enumerate(nodes):
            node.start(folder / f"node{i + 1}")
        yield nodes
    finally:
        for node in nodes:
            node.stop()


class Client:
    """A connection as one identity whose asynchronous errors the test can await."""

    def __init__(self) -> None:
        self.errors: asyncio.Queue[Exception] = asyncio.Queue()
        self.nc: NatsClient | None = None

    async def _on_error(self, exc: Exception) -> None:
        await self.errors.put(exc)

    async def connect(
        self, url: str, user: str | None = None, password: str | None = None, inbox_prefix: str = "_INBOX"
    ) -> NatsClient:
        options: dict[str, object] = {}
        if user is not None:
            options = {"user": user, "password": password or ""}
        self.nc = await nats.connect(
            url,
            error_cb=self._on_error,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            connect_timeout=2,
            inbox_prefix=inbox_prefix,
            **options,
        )
        return self.nc

    async def next_error(self, timeout_s: float = 5.0) -> str:
        return str(await asyncio.wait_for(self.errors.get(), timeout_s))

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()


def route_environ(password: str, route_ports: dict[int, int]) -> dict[str, str]:
    """The route password and every node's whole route URL (see natsconf.route_url_env)."""
    env = {ROUTE_PASSWORD_ENV: password}
    for n, port in route_ports.items():
        env[route_url_env(n)] = f"nats-route://{ROUTE_USER}:{password}@127.0.0.1:{port}"
    return env
