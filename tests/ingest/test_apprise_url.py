"""Sending through Apprise: each send's error is its own, even when sends overlap."""

from __future__ import annotations

import asyncio

from ingest.notify.apprise_url import send
from opswire.launcher.embedded import free_port


async def test_overlapping_sends_each_report_their_own_receiver() -> None:
    # Refusing receivers, told apart by their address in Apprise's error line.
    hosts = [f"127.0.0.{n}" for n in range(1, 7)]
    port = free_port()
    errors = await asyncio.gather(*(send(f"json://{host}:{port}/hook", "t", "{}", 5) for host in hosts))
    for host, error in zip(hosts, errors, strict=True):
        assert error is not None and f"to {host}." in error, (host, error)
