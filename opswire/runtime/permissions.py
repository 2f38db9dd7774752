"""Who may do what on the bus (DESIGN §4): the one permission table.

Every NATS identity opswire uses is a *role*. Each role may publish and subscribe
only to what its job needs; everything else is a permissions violation raised by
nats-server itself. Every shipped server config (`opswire up`'s generated one,
`deploy/nats/*.conf`, compose, k8s) is rendered from this table by
`opswire.runtime.natsconf`, and a test checks the shipped files match it.

Stream ownership: ingest owns the telemetry streams (metrics, logs, alerts), auth
owns the events and audit streams. Only an owner may create or update its streams
(nobody may delete one); only a consumer's service may create, pull from or ack its
durable consumer. The `subscriber` role (other systems) reads the public subjects
live and through consumers of its own on the public streams, and can do nothing else:
no RPC, no agent inbox, no `_INBOX` traffic, no stream configuration, no audit stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from opswire.contract.subjects import Subjects

Role = Literal["gateway", "auth", "ingest", "commands", "subscriber"]
ROLES: tuple[Role, ...] = ("gateway", "auth", "ingest", "commands", "subscriber")
SERVICE_ROLES: tuple[Role, ...] = ("gateway", "auth", "ingest", "commands")

# The durable consumers of the services (the services use these names).
AUTH_PRESENCE = "auth-presence"
AUTH_AUDIT = "auth-audit"
INGEST_METRICS = "ingest-metrics"
INGEST_LOGS = "ingest-logs"
# Presence events for the `offline` alert rule (ingest/notify/offline.py).
INGEST_PRESENCE = "ingest-presence"
# Who pulls from which: (stream attribute of Subjects, durable name).
DURABLES: dict[Role, tuple[tuple[str, str], ...]] = {
    "auth": (("events_stream", AUTH_PRESENCE), ("audit_stream", AUTH_AUDIT)),
    "ingest": (
        ("metrics_stream", INGEST_METRICS),
        ("logs_stream", INGEST_LOGS),
        ("events_stream", INGEST_PRESENCE),
    ),
}
# The streams each owner creates at start-up and recreates if they vanish.
OWNED_STREAMS: dict[Role, tuple[str, ...]] = {
    "ingest": ("metrics_stream", "logs_stream", "alerts_stream"),
    "auth": ("events_stream", "audit_stream"),
}
PUBLIC_STREAMS = ("metrics_stream", "logs_stream", "alerts_stream", "events_stream")


def inbox_prefix(role: Role) -> str:
    """Each identity's own reply namespace: it may read these replies and nobody else's."""
    return f"_INBOX_{role}"


@dataclass(frozen=True)
class Permissions:
    publish_allow: list[str] = field(default_factory=list)
    publish_deny: list[str] = field(default_factory=list)
    subscribe_allow: list[str] = field(default_factory=list)
    # Responders may answer the requests they received (and only those).
    allow_responses: bool = False


def _owner_api(stream: str) -> list[str]:
    return [f"$JS.API.STREAM.{verb}.{stream}" for verb in ("INFO", "CREATE", "UPDATE")]


def _warden_api(stream: str) -> list[str]:
    """Listing and deleting others' consumers of a public stream (see `warden.py`)."""
    return [f"$JS.API.CONSUMER.LIST.{stream}", f"$JS.API.CONSUMER.DELETE.{stream}.*"]


def _durable_api(stream: str, durable: str) -> list[str]:
    """Create (every form nats-py and other clients use), inspect, pull from and ack one durable."""
    return [
        f"$JS.API.CONSUMER.CREATE.{stream}.{durable}",
        f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def _reader_api(stream: str) -> list[str]:
    """What another system needs to read a public stream through consumers of its own."""
    return [
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.*",
        f"$JS.API.CONSUMER.INFO.{stream}.*",
        f"$JS.API.CONSUMER.DELETE.{stream}.*",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*",
        f"$JS.API.CONSUMER.NAMES.{stream}",
        f"$JS.API.CONSUMER.LIST.{stream}",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]


def _service_durable_denials(stream: str, durable: str) -> list[str]:
    """A service's durable is not another system's: it may look at it, never take from it."""
    taking = [api for api in _durable_api(stream, durable) if ".INFO." not in api]
    return [*taking, f"$JS.API.CONSUMER.DELETE.{stream}.{durable}"]


def role_permissions(role: Role, subjects: Subjects) -> Permissions:
    """The permissions of `role` for a deployment whose names are `subjects`.

    `subjects` may hold single-token wildcards (prefix `*`, streams `*`) to render a
    config that serves many prefixes at once, as the test suite's shared server does.
    """
    p = subjects.prefix

    def stream(attr: str) -> str:
        return str(getattr(subjects, attr))

    inbox = f"{inbox_prefix(role)}.>"
    durables = [(stream(attr), name) for attr, name in DURABLES.get(role, ())]
    owned = [api for attr in OWNED_STREAMS.get(role, ()) for api in _owner_api(stream(attr))]
    owned += [
        api
        for attr in OWNED_STREAMS.get(role, ())
        if attr in PUBLIC_STREAMS
        for api in _warden_api(stream(attr))
    ]
    pulls = [api for s, d in durables for api in _durable_api(s, d)]
    if role == "gateway":
        return Permissions(
            publish_allow=[
                f"{p}.metrics.*",
                f"{p}.logs.*",
                f"{p}.agents.*.*",
                f"{p}.audit.*",
                f"{p}.presence.heartbeat",
                f"{p}.agent.*.control",
                f"{p}.rpc.>",
            ],
            subscribe_allow=[
                f"{p}.agent.*.*",  # one subscription per connected server: its inbox and control
                f"{p}.metrics.*",
                f"{p}.logs.*",
                f"{p}.alerts.*",
                f"{p}.sessions.revoked",
                inbox,
            ],
            allow_responses=True,  # delivery acks to the commands service
        )
    if role == "auth":
        return Permissions(
            publish_allow=[
                f"{p}.agent.*.control",
                f"{p}.sessions.revoked",
                # Presence changes auth makes itself (a server swept offline, found again).
                f"{p}.agents.*.connected",
                f"{p}.agents.*.disconnected",
                "$JS.API.INFO",
                *owned,
                *pulls,
            ],
            subscribe_allow=[f"{p}.rpc.auth.>", f"{p}.presence.heartbeat", inbox],
            allow_responses=True,
        )
    if role == "ingest":
        return Permissions(
            publish_allow=[f"{p}.alerts.*", "$JS.API.INFO", *owned, *pulls],
            subscribe_allow=[f"{p}.rpc.ingest.>", inbox],
            allow_responses=True,
        )
    if role == "commands":
        return Permissions(
            publish_allow=[f"{p}.agent.*.inbox", f"{p}.commands.*.results", f"{p}.audit.*"],
            subscribe_allow=[f"{p}.rpc.commands.>", inbox],
            allow_responses=True,
        )
    if role == "subscriber":
        service_durables = [
            (stream(attr), name)
            for durables_of in DURABLES.values()
            for attr, name in durables_of
            if attr in PUBLIC_STREAMS
        ]
        # The nameless create carries the consumer's name only in its payload, where no
        # permission can see it: with it, anyone could rewrite a service's durable (its
        # filter, so the service silently skips messages). Refused where services consume.
        nameless = sorted({f"$JS.API.CONSUMER.CREATE.{s}" for s, _ in service_durables})
        return Permissions(
            publish_allow=[
                "$JS.API.INFO",
                "$JS.API.STREAM.NAMES",
                *[api for attr in PUBLIC_STREAMS for api in _reader_api(stream(attr))],
            ],
            publish_deny=[
                *nameless,
                *[api for s, d in service_durables for api in _service_durable_denials(s, d)],
            ],
            subscribe_allow=[
                f"{p}.metrics.>",
                f"{p}.logs.>",
                f"{p}.alerts.>",
                f"{p}.agents.>",
                f"{p}.commands.*.results",
                inbox,
            ],
        )
    raise ValueError(f"unknown role {role!r}")
