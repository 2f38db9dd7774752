"""The real topology on one machine: a 3-node NATS cluster from the shipped
`deploy/nats/cluster-node*.conf` (ports moved to free ones), and any number of opswire
processes (`python -m opswire <role>`) connected to all three nodes, each with its own
NATS identity.

    with nats_cluster(tmp) as cluster:
        fleet = Fleet(cluster, database_url, jwt_secret, tmp, OPSWIRE_STREAM_REPLICAS="3")
        await fleet.start("ingest-1", "ingest"); ...; await fleet.start("gw-a", "gateway")
        fleet.kill("ingest-1")            # kill -9
        cluster.kill(await cluster.leader_of("OPSWIRE_METRICS"))

Each process writes to <tmp>/<name>.log; a process that exits early shows its tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats

from opswire.launcher.embedded import free_port
from opswire.runtime.permissions import Role, inbox_prefix
from tests.deploy.natsproc import NATS_DIR, Node, password_environ, role_passwords, route_environ
from tests.helpers.stack import wait_for_ready

NODES = (1, 2, 3)


@dataclass
class NatsCluster:
    nodes: dict[str, Node]  # by server name: nats-1, nats-2, nats-3
    passwords: dict[Role, str]
    folder: Path

    @property
    def urls(self) -> str:
        """Every node, for NATS_URL: a client fails over to the others."""
        return ",".join(node.url for node in self.nodes.values())

    def live_url(self) -> str:
        return next(
            node.url
            for node in self.nodes.values()
            if node.process is not None and node.process.poll() is None
        )

    def kill(self, name: str) -> None:
        """kill -9 one node."""
        process = self.nodes[name].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait()

    async def leader_of(self, stream: str, owner: Role = "ingest") -> str:
        """The server name of the stream's current leader, asked as the stream's owner."""
        nc = await nats.connect(
            self.live_url(),
            user=owner,
            password=self.passwords[owner],
            inbox_prefix=inbox_prefix(owner),
            allow_reconnect=False,
        )
        try:
            info = await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()
        assert info.cluster is not None and info.cluster.leader, f"{stream} has no leader"
        return info.cluster.leader

    async def wait_formed(self, timeout_s: float = 30.0) -> None:
        """Every node routed to the others and JetStream ready (a meta leader elected)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(await asyncio.gather(*(asyncio.to_thread(_healthy, n) for n in self.nodes.values()))):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"NATS cluster not formed within {timeout_s} s")


def _healthy(node: Node) -> bool:
    try:
        with urllib.request.urlopen(f"{node.monitor_url}/routez", timeout=1) as reply:
            routes = json.load(reply).get("routes") or []
        with urllib.request.urlopen(f"{node.monitor_url}/healthz", timeout=1) as reply:
            healthy = reply.status == 200
    except OSError:
        return False
    return healthy and len({route.get("remote_name") for route in routes}) == len(NODES) - 1


@contextlib.contextmanager
def nats_cluster(folder: Path) -> Iterator[NatsCluster]:
    passwords = role_passwords()
    route_ports = {n: free_port() for n in NODES}
    env = {**password_environ(passwords), **route_environ("p" + os.urandom(16).hex(), route_ports)}
    nodes = {
        f"nats-{n}": Node(NATS_DIR / f"cluster-node{n}.conf", env, route_port=route_ports[n]) for n in NODES
    }
    try:
        for name, node in nodes.items():
            node.start(folder / name)
        yield NatsCluster(nodes, passwords, folder)
    finally:
        for node in nodes.values():
            node.stop()


@dataclass
class Fleet:
    """opswire processes against the cluster and one database."""

    cluster: NatsCluster
    database_url: str
    jwt_secret: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def base_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def ws_url(self, name: str) -> str:
        return f"ws://127.0.0.1:{self.ports[name]}"

    async def start(self, name: str, role: Role) -> None:
        env = {
            **os.environ,
            "NATS_URL": self.cluster.urls,
            "OPSWIRE_NATS_USER": role,
            "OPSWIRE_NATS_PASSWORD": self.cluster.passwords[role],
            "DATABASE_URL": self.database_url,
            "OPSWIRE_JWT_SECRET": self.jwt_secret,
            "PYTHONUNBUFFERED": "1",
            "OPSWIRE_METRICS_PORT": "0",  # each process its own free ops port
            **self.extra_env,
        }
        if role == "gateway":
            self.ports[name] = free_port()
            env.update({"OPSWIRE_HOST": "127.0.0.1", "OPSWIRE_PORT": str(self.ports[name])})
        if role == "commands":
            env["OPSWIRE_INSTANCE_ID"] = name
        with (self.log_dir / f"{name}.log").open("ab") as out:
            self.processes[name] = subprocess.Popen(  # noqa: ASYNC220 - returns at once
                [sys.executable, "-m", "opswire", role],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self, name: str) -> None:
        """kill -9: no shutdown, no acks, no goodbyes."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def log_names(self) -> list[str]:
        """Every process started, killed ones included."""
        return sorted(path.stem for path in self.log_dir.glob("*.log"))

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    async def wait_ready(self, gateway: str, timeout_s: float = 90.0) -> None:
        await wait_for_ready(self.base_url(gateway), self.processes, self.log_tail, timeout_s, gateway)

    async def stop_all(self, timeout_s: float = 10.0) -> None:
        """SIGTERM to all at once, then wait for all together; SIGKILL whoever is left."""
        processes, self.processes = list(self.processes.values()), {}
        for process in processes:
            if process.poll() is None:
                process.terminate()

        async def reap(process: subprocess.Popen[bytes]) -> None:
            try:
                await asyncio.to_thread(process.wait, timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)

        await asyncio.gather(*(reap(process) for process in processes))
