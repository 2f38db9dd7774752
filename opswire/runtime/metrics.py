"""Every Prometheus series opswire exports (DESIGN §10), defined in this one module.

Call sites record with one line (`metrics.frame("accepted")`), so the
instrumentation never reshapes the code it watches. Each process exports them on
its ops port (`opswire.runtime.opsport`): a labelled series appears once the process
records it, so a service shows no gateway frames; the process's own CPU, memory and
file descriptors come with prometheus-client's default collectors.

Label values are from small fixed sets (frame kinds, refusal reasons, RPC methods,
command statuses, consumer names): never an id, so the number of series stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from prometheus_client import Counter, Gauge, Histogram

# Seconds: 1 ms .. 30 s, enough for a database write as for a command that waits on its agent.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)

FRAMES = Counter(
    "opswire_gateway_frames",
    "Agent telemetry frames the gateway received, by outcome (accepted, or the refusal reason).",
    ["outcome"],
)
PUBLISH_BUFFER = Gauge(
    "opswire_gateway_publish_buffer_depth",
    "Accepted frames held by the gateway while waiting for NATS to acknowledge them.",
)
CONNECTIONS = Gauge(
    "opswire_gateway_connections",
    "Open WebSocket connections on this gateway, by kind (agent, dashboard).",
    ["kind"],
)
HTTP_REQUESTS = Histogram(
    "opswire_http_request_duration_seconds",
    "REST requests by method, route template and status code.",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
RPC_LATENCY = Histogram(
    "opswire_rpc_duration_seconds",
    "Time a service took to answer an RPC request, by method (`<service>.<method>`).",
    ["method"],
    buckets=_LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "opswire_consumer_pending_messages",
    "Messages in the stream not yet delivered to this durable consumer (as of its last batch).",
    ["consumer"],
)
INGEST_BATCH_SIZE = Histogram(
    "opswire_ingest_batch_size",
    "Messages per batch ingest stored, by writer (its consumer's name).",
    ["kind"],
    buckets=_BATCH_BUCKETS,
)
INGEST_BATCH_LATENCY = Histogram(
    "opswire_ingest_batch_duration_seconds",
    "Time to store one batch (insert and commit), by writer.",
    ["kind"],
    buckets=_LATENCY_BUCKETS,
)
COMMANDS = Counter(
    "opswire_commands",
    "Commands and Docker actions finished, by kind (shell, docker) and final status.",
    ["kind", "status"],
)


NOTIFICATIONS = Counter(
    "opswire_notifications",
    "Alert notifications tried by ingest, by outcome: delivered, retrying (failed, tried again "
    "later) or given_up (failed for the last time).",
    ["outcome"],
)

_FRAME_OUTCOMES: dict[str, Counter] = {}


def frame(outcome: str) -> None:
    """One agent frame was accepted (`"accepted"`) or refused (the reason, e.g. `"busy"`).

    Called for every frame: the child of each outcome (a handful, all ours) is looked up
    once, not through `labels()` (a lock and a key build) each time.
    """
    child = _FRAME_OUTCOMES.get(outcome)
    if child is None:
        child = _FRAME_OUTCOMES[outcome] = FRAMES.labels(outcome=outcome)
    child.inc()


def notification(outcome: str) -> None:
    """One notification delivery was tried: `delivered`, `retrying` or `given_up`."""
    NOTIFICATIONS.labels(outcome=outcome).inc()


def watch_gateway(
    buffered: Callable[[], int], agents: Callable[[], int], dashboards: Callable[[], int]
) -> None:
    """Read the publish buffer and the open sockets from the gateway's own objects at every
    scrape, so no call site has to keep a count that could drift."""
    PUBLISH_BUFFER.set_function(buffered)
    CONNECTIONS.labels(kind="agent").set_function(agents)
    CONNECTIONS.labels(kind="dashboard").set_function(dashboards)


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).observe(seconds)


def rpc_timer(method: str) -> AbstractContextManager[None]:
    """`with metrics.rpc_timer("auth.authorize"): ...` times one answer."""
    return RPC_LATENCY.labels(method=method).time()


def consumer_lag(consumer: str, pending: int) -> None:
    CONSUMER_LAG.labels(consumer=consumer).set(pending)


def ingest_batch_timer(kind: str, size: int) -> AbstractContextManager[None]:
    """`with metrics.ingest_batch_timer("metrics", len(batch)): store(batch)`."""
    INGEST_BATCH_SIZE.labels(kind=kind).observe(size)
    return INGEST_BATCH_LATENCY.labels(kind=kind).time()


def command_finished(kind: str, status: str) -> None:
    COMMANDS.labels(kind=kind, status=status).inc()
