"""`make bench`: the issue-10 table, opswire and the floor (bench/floor.py) side by side in one run.

For each system, on this machine, with the same load driver:
  1. --fleet agents connect and authenticate at once: seconds for all of them; then
     the gateway's RSS growth per idle connection;
  2. the same agents send 1 sample/s for --fleet-seconds: agent -> dashboard p99;
  3. --agents agents send as fast as their sockets take samples for --seconds, with
     --dashboards dashboards watching: gateway CPU per frame, frames/s accepted
     (each one published to JetStream), rows stored / frames accepted (opswire:
     rows in PostgreSQL once ingest caught up, waiting at most 120 s; the floor
     has no ingest).

    python bench/table.py                      # 100 flat out 10 s, 1,000 x 1 Hz 15 s
    python bench/table.py --fleet 10000        # the 10,000-agent connect figure
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from harness import (
    UNLIMITED,
    Target,
    caught_up,
    close_all,
    connect_all,
    dashboards,
    drive,
    floor_stack,
    opswire_stack,
    percentile,
)

Figures = dict[str, float]

ROWS: list[tuple[str, str, str, Callable[[float], str]]] = [
    # (key, figure, target, format)
    ("cpu_us", "gateway CPU per frame, agents flat out", "<= 1.2", lambda v: f"{v:,.0f} µs"),
    ("fps", "frames/s reaching NATS, same run", ">= 0.85", lambda v: f"{v:,.0f}"),
    ("stored", "rows stored / frames accepted", ">= 0.95", lambda v: f"{v:.2f}"),
    ("p99", "fleet x 1 Hz: agent -> dashboard p99", "<= 1.5", lambda v: f"{v:,.1f} ms"),
    ("connect", "fleet: connect + auth, all", "<= 1.5", lambda v: f"{v:,.2f} s"),
    ("rss", "RSS per idle agent connection", "<= 1.2", lambda v: f"{v:,.1f} KB"),
]


def _cpu_s(target: Target) -> float:
    times = target.process().cpu_times()
    return float(times.user + times.system)


async def measure(stack: AbstractAsyncContextManager[Target], args: argparse.Namespace) -> Figures:
    figures: Figures = {}
    async with stack as target:
        # The fleet first, on a fresh gateway: RSS growth is not masked by memory freed later.
        await asyncio.sleep(3)  # provisioning settled
        rss = target.process().memory_info().rss
        fleet, figures["connect"] = await connect_all(target, target.keys[: args.fleet])
        await asyncio.sleep(1)  # settled: nothing in flight
        figures["rss"] = (target.process().memory_info().rss - rss) / len(fleet) / 1024
        async with dashboards(target, [a.server_id for a in fleet[: args.dashboards]]) as latencies:
            await asyncio.gather(*(drive(a, 1, args.fleet_seconds) for a in fleet))
        figures["p99"] = percentile(latencies, 0.99)
        await close_all(fleet)

        agents, _ = await connect_all(target, target.keys[: args.agents])
        async with dashboards(target, [a.server_id for a in agents[: args.dashboards]]):
            before, cpu = await target.stored() or 0, _cpu_s(target)
            started = time.monotonic()
            await asyncio.gather(*(drive(a, 0, args.seconds) for a in agents))
            elapsed, cpu = time.monotonic() - started, _cpu_s(target) - cpu
        accepted = sum(a.sent - a.refused for a in agents)
        stored, _ = await caught_up(target, before + accepted)
        figures["cpu_us"] = cpu / max(accepted, 1) * 1e6
        figures["fps"] = accepted / elapsed
        figures["stored"] = (stored - before) / max(accepted, 1)
        await close_all(agents)
    return figures


def render(opswire: Figures, floor: Figures, args: argparse.Namespace) -> str:
    lines = [
        f"agents={args.agents} flat out {args.seconds:g} s, fleet={args.fleet} x 1 Hz "
        f"{args.fleet_seconds:g} s, dashboards={args.dashboards}",
        "| figure | opswire | floor | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for key, label, goal, fmt in ROWS:
        mine = fmt(opswire[key])
        if key == "stored":
            lines.append(f"| {label} | {mine} | — | — | {goal} |")
            continue
        ratio = opswire[key] / floor[key] if floor[key] else float("nan")
        lines.append(f"| {label} | {mine} | {fmt(floor[key])} | {ratio:.2f} | {goal} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fleet", type=int, default=1000)
    parser.add_argument("--fleet-seconds", type=float, default=15.0)
    parser.add_argument("--dashboards", type=int, default=10)
    args = parser.parse_args()
    servers = max(args.agents, args.fleet)

    async def both() -> tuple[Figures, Figures]:
        floor = await measure(floor_stack(servers), args)
        opswire = await measure(opswire_stack(servers, UNLIMITED), args)
        return opswire, floor

    with contextlib.suppress(KeyboardInterrupt):
        opswire, floor = asyncio.run(both())
        print(render(opswire, floor, args))


if __name__ == "__main__":
    main()
