"""The whole system as real processes: auth, ingest, commands and gateway, each
`python -m opswire <service>`, against the test's NATS and a fresh database.

    async with running_stack(nats_url, database_url, namespace, jwt_secret, tmp_path) as stack:
        stack.base_url, stack.ws_url  # http://127.0.0.1:PORT, ws://127.0.0.1:PORT
        await stack.stop("gateway"); await stack.start("gateway")

Each process writes its output to <tmp>/<service>.log; the tail is shown if start-up fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from opswire.contract.subjects import Subjects
from opswire.launcher.embedded import free_port
from opswire.runtime.permissions import Role
from tests.helpers.backends import Namespace, create_database, drop_database, role_env


async def wait_for_ready(
    base_url: str,
    processes: dict[str, subprocess.Popen[bytes]],
    log_tail: Callable[[str], str],
    timeout_s: float,
    what: str,
) -> None:
    """Until the gateway at `base_url` answers /ready (NATS reachable, every service
    answering); a process that exits meanwhile fails at once, with its last log lines."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            for name, process in processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}):\n{log_tail(name)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{base_url}/ready")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    tails = "\n".join(f"--- {n}\n{log_tail(n)}" for n in processes)
    raise TimeoutError(f"{what} not ready in {timeout_s} s\n{tails}")


SERVICES: tuple[Role, ...] = ("auth", "ingest", "commands", "gateway")


@dataclass
class Stack:
    env: dict[str, str]
    log_dir: Path
    port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # The stack's subject/stream prefix, for tests that watch its NATS events.
    namespace: Namespace | None = None

    @property
    def subjects(self) -> Subjects:
        assert self.namespace is not None, "stack started without a namespace"
        return self.namespace.subjects

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    async def start(self, name: Role) -> None:
        env = dict(os.environ)
        env.update(self.env)
        # Every process on its own NATS identity, as `opswire up` runs them.
        env.update(role_env(self.env["NATS_URL"], name))
        with (self.log_dir / f"{name}.log").open("ab") as out:
            self.processes[name] = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [sys.executable, "-m", "opswire", name],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    async def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        await wait_for_ready(self.base_url, self.processes, self.log_tail, timeout_s, "stack")


@contextlib.asynccontextmanager
async def running_stack(
    nats_url: str,
    database_url: str,
    namespace: Namespace,
    jwt_secret: str,
    log_dir: Path,
    **extra_env: str,
) -> AsyncIterator[Stack]:
    port = free_port()
    env = {
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        "OPSWIRE_JWT_SECRET": jwt_secret,
        "OPSWIRE_HOST": "127.0.0.1",
        "OPSWIRE_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        **namespace.env(),
        **extra_env,
    }
    stack = Stack(env=env, log_dir=log_dir, port=port, namespace=namespace)
    try:
        for name in SERVICES:
            await stack.start(name)
        await stack.wait_ready()
        yield stack
    finally:
        for name in reversed(SERVICES):
            await stack.stop(name)


@contextlib.asynccontextmanager
async def stack_with_database(
    nats_url: str, postgres_admin_url: str, jwt_secret: str, log_dir: Path, **env: str
) -> AsyncIterator[Stack]:
    """`running_stack` on a database of its own, dropped afterwards (the module-scoped
    `stack` fixtures of the e2e and browser tests)."""
    database_url = await create_database(postgres_admin_url)
    try:
        async with running_stack(
            nats_url, database_url, Namespace.new(), jwt_secret, log_dir, **env
        ) as running:
            yield running
    finally:
        await drop_database(postgres_admin_url, database_url)
