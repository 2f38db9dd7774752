"""What the agent costs its host: CPU % and RSS while it runs against a tiny local sink.

    python bench/agent_cost.py --seconds 30 --interval 5
    python bench/agent_cost.py --seconds 20 --interval 0.5 --log-file /var/log/syslog

The sink is a minimal stand-in for the gateway's agent socket: it accepts the
`auth` frame, answers `auth_success` and counts what arrives. The agent runs
as a real subprocess (`python -m opswire agent`), so the numbers include the
interpreter, imports and psutil; CPU is measured over the steady state only
(after the first frame arrived).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter

import psutil
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

KEY = "bench-key-" + "b" * 32


async def main() -> None:
    args = _parser().parse_args()
    received: Counter[str] = Counter()
    first_frame = asyncio.Event()

    async def sink(ws: ServerConnection) -> None:
        await ws.recv()  # auth
        await ws.send(json.dumps({"type": "auth_success", "server_id": "bench", "message": "ok"}))
        try:
            async for raw in ws:
                received[json.loads(raw)["type"]] += 1
                first_frame.set()
        except ConnectionClosed:
            pass

    async with serve(sink, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        cmd = [sys.executable, "-m", "opswire", "agent", "--url", f"ws://127.0.0.1:{port}",
               "--interval", str(args.interval), "--log-level", "WARNING"]  # fmt: skip
        for path in args.log_file:
            cmd += ["--log-file", path]
        env = {**os.environ, "OPSWIRE_API_KEY": KEY}
        agent = await asyncio.create_subprocess_exec(*cmd, env=env)
        try:
            await asyncio.wait_for(first_frame.wait(), 30)
            proc = psutil.Process(agent.pid)
            cpu_start, wall_start = _cpu(proc), time.monotonic()
            rss_peak = 0
            end = wall_start + args.seconds
            while time.monotonic() < end:
                rss_peak = max(rss_peak, proc.memory_info().rss)
                await asyncio.sleep(0.5)
            cpu_used, wall = _cpu(proc) - cpu_start, time.monotonic() - wall_start
            rss_now = proc.memory_info().rss
        finally:
            agent.terminate()
            await agent.wait()

    print(f"agent ran {wall:.1f} s at --interval {args.interval}")
    print(f"CPU     {100 * cpu_used / wall:.2f} % of one core ({cpu_used * 1000:.0f} ms CPU)")
    print(f"RSS     {rss_now / 2**20:.1f} MiB (peak {max(rss_peak, rss_now) / 2**20:.1f} MiB)")
    print(f"frames  {dict(received)}")


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=5.0, help="metrics interval of the agent")
    parser.add_argument("--log-file", action="append", default=[], help="also tail this file")
    return parser


if __name__ == "__main__":
    asyncio.run(main())
