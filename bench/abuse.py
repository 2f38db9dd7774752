"""Abuse benchmark (issue 8): one flooding agent beside honest agents, with the default budgets.

Runs `opswire up` once and measures the honest agents twice, without and then
with the flood: --honest agents send 1 sample/s for --seconds, --dashboards
dashboards watch some of them. The flooding agent sends samples of --flood-kb
KB as fast as its socket takes them and reconnects whenever it is closed for
abuse. Printed for the honest agents: samples sent, refused, stored (rows in
PostgreSQL for their servers), accepted/s and agent -> dashboard p50/p99.
Target: the honest agents lose nothing and their p99 stays under 2x.

    python bench/abuse.py --honest 100 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time

import websockets
from harness import (
    Agent,
    Target,
    close_all,
    connect_agent,
    connect_all,
    dashboards,
    drive,
    opswire_stack,
    percentile,
    sample,
)

Figures = dict[str, float]


async def _none() -> None:
    return None


async def flood(target: Target, key: str, padding: str) -> None:
    """Flood forever, reconnecting whenever the gateway closes the socket for abuse."""
    while True:
        try:
            agent = await connect_agent(target, key)
        except (OSError, RuntimeError, websockets.ConnectionClosed):
            print("closed", flush=True)
            continue
        drain = asyncio.create_task(_discard(agent))
        try:
            while True:
                await agent.ws.send(sample(agent.next_ts(), padding))
                await asyncio.sleep(0)
        except websockets.ConnectionClosed:
            print("closed", flush=True)
        finally:
            drain.cancel()
            await agent.ws.close()


def _flooder(target: Target, key: str, kb: int) -> subprocess.Popen[str]:
    """The flooding agent in a process of its own (blocking start, kept out of async code)."""
    argv = [sys.executable, __file__, "--flood", target.base, key, str(kb)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


async def _discard(agent: Agent) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for _ in agent.ws:
            pass


async def honest_round(
    target: Target, keys: list[str], args: argparse.Namespace, with_flood: bool
) -> Figures:
    assert target.stored_for is not None
    agents, _ = await connect_all(target, keys)
    servers = [a.server_id for a in agents]
    before = await target.stored_for(servers)
    flooder = _flooder(target, target.keys[-1], args.flood_kb) if with_flood else None
    async with dashboards(target, servers[: args.dashboards]) as latencies:
        started = time.monotonic()
        await asyncio.gather(*(drive(a, 1, args.seconds) for a in agents))
        elapsed = time.monotonic() - started
    flood_closed = 0
    if flooder is not None:
        flooder.terminate()
        out, _ = await asyncio.to_thread(flooder.communicate)
        flood_closed = out.count("closed")
    sent = sum(a.sent for a in agents)
    refused = sum(a.refused for a in agents)
    deadline = time.monotonic() + 60
    # Nothing to await: the database is polled until ingest has stored the honest samples.
    while (stored := await target.stored_for(servers) - before) < sent - refused:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    await close_all(agents)
    return {
        "sent": sent,
        "refused": refused,
        "stored": stored,
        "accepted_s": (sent - refused) / elapsed,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "flood_closed": flood_closed,
    }


async def run(args: argparse.Namespace) -> tuple[Figures, Figures]:
    async with opswire_stack(args.honest + 1) as target:
        honest = target.keys[: args.honest]
        quiet = await honest_round(target, honest, args, with_flood=False)
        flooded = await honest_round(target, honest, args, with_flood=True)
    return quiet, flooded


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--flood":
        base, key, kb = sys.argv[2:]
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(flood(Target("opswire", base, 0, _none), key, "x" * int(kb) * 1024))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--honest", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--dashboards", type=int, default=10)
    parser.add_argument("--flood-kb", type=int, default=256)
    args = parser.parse_args()
    quiet, flooded = asyncio.run(run(args))
    print(
        f"honest={args.honest} x 1 Hz for {args.seconds:g} s, dashboards={args.dashboards}, "
        f"flood: {args.flood_kb} KB samples flat out (default budgets)"
    )
    print("| honest agents | sent | refused | stored | accepted/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for name, f in (("without flood", quiet), ("with flood", flooded)):
        print(
            f"| {name} | {f['sent']:.0f} | {f['refused']:.0f} | {f['stored']:.0f} | {f['accepted_s']:,.1f} "
            f"| {f['p50']:.1f} | {f['p99']:.1f} |"
        )
    print(
        f"flood closed for abuse {flooded['flood_closed']:.0f} times; "
        f"honest p99 with/without the flood: {flooded['p99'] / quiet['p99']:.2f}"
    )


if __name__ == "__main__":
    main()
