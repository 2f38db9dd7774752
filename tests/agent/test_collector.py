from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psutil

from agent.collector import MetricsCollector, temperatures
from opswire.contract.frames import MetricsFrame, encode, parse_agent_frame
from opswire.contract.telemetry import MetricsFields


async def test_sample_is_plausible_and_valid_for_the_contract() -> None:
    collector = await asyncio.to_thread(MetricsCollector)
    sample = await asyncio.to_thread(collector.collect)

    assert 0 <= sample.cpu_percent <= 100
    assert 0 < sample.memory_percent <= 100
    assert abs(sample.timestamp - datetime.now(UTC)) < timedelta(seconds=5)

    assert sample.disk_usage, "no filesystem reported"
    for disk in sample.disk_usage:
        assert disk.total > 0 and disk.used <= disk.total and 0 <= disk.percent <= 100
    assert any(d.path == "/" for d in sample.disk_usage) or len(psutil.disk_partitions()) > 0

    names = {nic.interface for nic in sample.network}
    assert names == set(psutil.net_io_counters(pernic=True))
    assert all(nic.packets_recv is not None and nic.errin is not None for nic in sample.network)

    extra = sample.model_dump()
    assert len(extra["load_average"]) == 3
    assert extra["uptime_seconds"] > 0
    assert 0 <= extra["swap_percent"] <= 100
    assert extra["processes"] > 1

    # Exactly what the gateway does with the frame, and what it publishes.
    parsed = parse_agent_frame(encode(sample))
    assert isinstance(parsed, MetricsFrame)
    MetricsFields.model_validate(sample.model_dump(exclude={"type", "server_id"}))


async def test_cpu_percent_reflects_the_interval_since_the_last_sample() -> None:
    collector = await asyncio.to_thread(MetricsCollector)
    samples = [await asyncio.to_thread(collector.collect) for _ in range(2)]
    assert all(0 <= s.cpu_percent <= 100 for s in samples)
    assert samples[1].timestamp >= samples[0].timestamp


def test_temperatures_are_finite_names_to_degrees() -> None:
    temps = temperatures()  # often empty in VMs and containers; then the field is left out
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in temps.items())
