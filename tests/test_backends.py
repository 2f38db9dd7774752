"""The test backends themselves: a real nats-server with JetStream and a real PostgreSQL."""

import asyncpg
from nats.aio.client import Client as NatsClient

from tests.helpers.backends import Namespace


async def test_jetstream_available(nc: NatsClient, namespace: Namespace) -> None:
    js = nc.jetstream()
    stream = namespace.subjects.metrics_stream
    await js.add_stream(name=stream, subjects=[namespace.subjects.all_metrics])
    ack = await js.publish(namespace.subjects.metrics("s1"), b"{}", headers={"Nats-Msg-Id": "x"})
    again = await js.publish(namespace.subjects.metrics("s1"), b"{}", headers={"Nats-Msg-Id": "x"})
    assert again.duplicate and again.seq == ack.seq
    await js.delete_stream(stream)


async def test_fresh_database_is_empty(database_url: str) -> None:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN "
            "('pg_catalog', 'information_schema')"
        )
    finally:
        await conn.close()
    assert count == 0
