"""Speaking the NATS protocol directly, for what a client library hides."""

from __future__ import annotations

import asyncio

import orjson


async def assert_connect_refused(host: str, port: int, credentials: dict[str, str]) -> None:
    """A CONNECT with these credentials (none: anonymous) is answered 'Authorization
    Violation'. Raw, because nats-py leaves its socket open after a refused connect."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        info = await reader.readline()
        assert info.startswith(b"INFO ") and orjson.loads(info[5:])["auth_required"] is True
        connect = {"verbose": False, "pedantic": False, "protocol": 1, **credentials}
        writer.write(b"CONNECT " + orjson.dumps(connect) + b"\r\nSUB > 1\r\nPING\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 5)
        assert answer.startswith(b"-ERR 'Authorization Violation'"), answer
    finally:
        writer.close()
        await writer.wait_closed()
