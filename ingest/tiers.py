"""History tiers: samples rolled up per 1 min, 10 min and 1 h (DESIGN §5, issue 10.6).

Kept off the write path, so catch-up stays one COPY per batch: the metrics writer
only notes which (server, minute) each stored batch touched, and a background task
recomputes those buckets from the raw samples: 1-min ones every `tier_interval_s`,
the coarser ones about six times per bucket width (a 1-h bucket reads up to 720 raw
samples per server, so not every round). A bucket is
always recomputed whole (never incremented), so redelivered or late samples cannot be
counted twice, and the bucket still open is simply recomputed again next time.
At start-up every bucket from each server's newest rolled-up hour on is recomputed,
so rows stored just before a crash are rolled up too (and a database that had
samples before tiers existed gets them once).

A tier point is what a chart draws: `timestamp` (the bucket's start), `samples`, and
the same field names as a sample holding the average, with `min` and `max`
sub-objects of the same shape (see docs/history.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ingest.decode import DecodedSample
from ingest.models import METRICS_1H, METRICS_1M, METRICS_10M
from ingest.writer import pg_connection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tier:
    name: str  # the `resolution` that selects it
    width: timedelta
    table: Table


TIERS = (
    Tier("1m", timedelta(minutes=1), METRICS_1M),
    Tier("10m", timedelta(minutes=10), METRICS_10M),
    Tier("1h", timedelta(hours=1), METRICS_1H),
)
TIER_BY_NAME = {tier.name: tier for tier in TIERS}

# Numeric fields averaged per bucket: name in the point -> SQL over a raw row `m`.
_NETWORK = "jsonb_array_elements(m.data->'network')"
FIELDS: dict[str, str] = {
    "cpu_percent": "m.cpu_percent",
    "memory_percent": "m.memory_percent",
    "swap_percent": "(m.data->>'swap_percent')::float8",
    "load_1": "(m.data->'load_average'->>0)::float8",
    "load_5": "(m.data->'load_average'->>1)::float8",
    "load_15": "(m.data->'load_average'->>2)::float8",
    "network_bytes_recv": f"(SELECT sum((e->>'bytes_recv')::float8) FROM {_NETWORK} e)",
    "network_bytes_sent": f"(SELECT sum((e->>'bytes_sent')::float8) FROM {_NETWORK} e)",
}
STATS = ("avg", "min", "max")


def _point(stat: str) -> str:
    """The JSON object of one statistic, in a sample's own field names."""
    fields = [f"'{name}', f.{name}_{stat}" for name in FIELDS if not name.startswith("load_")]
    fields.append(
        f"'load_average', CASE WHEN f.load_1_{stat} IS NULL THEN NULL "
        f"ELSE jsonb_build_array(f.load_1_{stat}, f.load_5_{stat}, f.load_15_{stat}) END"
    )
    fields.append(f"'disk_usage', d.disk_{stat}")
    return f"jsonb_build_object({', '.join(fields)})"


def rollup_sql(tier: Tier) -> str:
    """Recompute the buckets of `tier` holding the given (server, instant) pairs ($1, $2)."""
    table = f"{tier.table.schema}.{tier.table.name}"
    width = f"interval '{int(tier.width.total_seconds())} seconds'"
    values = ", ".join(f"{expr} AS {name}" for name, expr in FIELDS.items())
    stats = ", ".join(f"{stat}({name}) AS {name}_{stat}" for name in FIELDS for stat in STATS)
    disks = ", ".join(
        f"jsonb_agg(jsonb_build_object('path', path, 'percent', {s}) ORDER BY path) AS disk_{s}"
        for s in STATS
    )
    return f"""
    WITH dirty AS (
        SELECT DISTINCT server_id, date_bin({width}, at, TIMESTAMPTZ '2000-01-01') AS bucket
        FROM unnest($1::uuid[], $2::timestamptz[]) AS d(server_id, at)
    ), raw AS (
        -- LATERAL: one primary-key range scan per bucket, never a scan of the whole table.
        -- OFFSET 0 keeps the planner from flattening it into a hash join of the whole
        -- table against the buckets (a cost of rows x buckets: 4 s for 4 days of one server).
        SELECT d.server_id, d.bucket, m.*
        FROM dirty d CROSS JOIN LATERAL (
            SELECT m.data->'disk_usage' AS disks, {values}
            FROM ingest.metrics m
            WHERE m.server_id = d.server_id AND m.timestamp >= d.bucket
              AND m.timestamp < d.bucket + {width}
            OFFSET 0
        ) AS m
    ), f AS (
        SELECT server_id, bucket, count(*) AS samples, {stats}
        FROM raw GROUP BY server_id, bucket
    ), per_disk AS (
        SELECT r.server_id, r.bucket, e->>'path' AS path, avg((e->>'percent')::float8) AS avg,
               min((e->>'percent')::float8) AS min, max((e->>'percent')::float8) AS max
        FROM raw r, jsonb_array_elements(r.disks) e
        GROUP BY 1, 2, 3
    ), d AS (
        SELECT server_id, bucket, {disks} FROM per_disk GROUP BY server_id, bucket
    )
    INSERT INTO {table} (server_id, bucket, samples, point)
    SELECT f.server_id, f.bucket, f.samples, jsonb_strip_nulls(
        {_point("avg")}
        || jsonb_build_object(
            'timestamp', to_char(f.bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'samples', f.samples, 'min', {_point("min")}, 'max', {_point("max")}))
    FROM f LEFT JOIN d USING (server_id, bucket)
    ON CONFLICT (server_id, bucket) DO UPDATE SET samples = excluded.samples, point = excluded.point
    """


# Every bucket from the newest rolled-up hour of each server on (all of a server not rolled up).
UNROLLED = text("""
    SELECT m.server_id, date_trunc('minute', m.timestamp) AS minute
    FROM ingest.metrics m
    LEFT JOIN (SELECT server_id, max(bucket) AS last FROM ingest.metrics_1h GROUP BY server_id) r
      USING (server_id)
    WHERE r.last IS NULL OR m.timestamp >= r.last
    GROUP BY 1, 2
""")


async def rollup(
    engine: AsyncEngine,
    touched: Iterable[tuple[uuid.UUID, datetime]],
    tiers: Sequence[Tier] = TIERS,
) -> None:
    """Recompute the buckets of `tiers` that hold these (server, instant) pairs."""
    pairs = sorted(set(touched))
    if not pairs:
        return
    servers = [server for server, _ in pairs]
    instants = [at for _, at in pairs]
    async with pg_connection(engine) as pg, pg.transaction():
        # JIT-compiling these wide statements costs seconds each, far more than running them.
        await pg.execute("SET LOCAL jit = off")
        for tier in tiers:
            await pg.execute(_ROLLUP[tier.name], servers, instants)


_ROLLUP = {tier.name: rollup_sql(tier) for tier in TIERS}


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def refresh_every_s(tier: Tier, interval_s: float) -> float:
    """A coarse bucket is recomputed from up to an hour of raw samples: not every round,
    but about six times per bucket width (at most 60 rounds apart)."""
    return max(interval_s, min(tier.width.total_seconds() / 6, 60 * interval_s))


class TierRollup:
    """The background task: notes what the writer stored, rolls it up periodically."""

    def __init__(self, engine: AsyncEngine, interval_s: float) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._dirty: dict[str, set[tuple[uuid.UUID, datetime]]] = {t.name: set() for t in TIERS}
        self._due: dict[str, float] = {t.name: 0.0 for t in TIERS}
        self._task: asyncio.Task[None] | None = None

    async def stored(self, samples: Sequence[DecodedSample]) -> None:
        """After-commit hook of the metrics writer (in memory only: no I/O)."""
        touched = {(s.server_id, _minute(s.sample.timestamp)) for s in samples}
        for dirty in self._dirty.values():
            dirty |= touched

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingest-tiers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def flush(self, now: float | None = None) -> None:
        """Roll up what was noted for every tier that is due (all of them if `now` is None);
        what fails is kept for the next round."""
        for tier in TIERS:
            if now is not None and now < self._due[tier.name]:
                continue
            dirty, self._dirty[tier.name] = self._dirty[tier.name], set()
            try:
                await rollup(self._engine, dirty, (tier,))
            except BaseException:
                self._dirty[tier.name] |= dirty
                raise
            if now is not None:
                self._due[tier.name] = now + refresh_every_s(tier, self._interval_s)

    async def _run(self) -> None:
        try:
            async with self._engine.connect() as conn:
                unrolled = [(r.server_id, r.minute) for r in await conn.execute(UNROLLED)]
            for dirty in self._dirty.values():
                dirty.update(unrolled)
        except Exception:
            log.exception("could not find samples not yet rolled up")
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.flush(loop.time())
            except Exception:
                # Kept for the next round; tiers are never worth stopping ingest for.
                log.exception("history tier roll-up failed")
            await asyncio.sleep(self._interval_s)
