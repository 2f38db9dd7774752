"""The AsyncAPI document of opswire's NATS subjects, generated from the contract.

A broker that never connects declares every public subject with its payload
model; FastStream renders the document. `opswire asyncapi` prints it and
docs/asyncapi.json is the shipped copy (a test keeps it current).
"""

from __future__ import annotations

from typing import Any

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from opswire import __version__
from opswire.contract import rpc as calls
from opswire.contract.events import (
    AgentControl,
    AgentDelivery,
    AlertEvent,
    AuditEvent,
    CommandResultEvent,
    PresenceEvent,
    PresenceHeartbeat,
)
from opswire.contract.rpc import RpcMethod
from opswire.contract.subjects import Subjects
from opswire.contract.telemetry import LogLine, MetricsSample
from opswire.runtime.rpc import rpc_subject

SID = "{server_id}"


def _events(broker: NatsBroker, subjects: Subjects) -> None:
    published: list[tuple[str, type[BaseModel], str]] = [
        (subjects.metrics(SID), MetricsSample, f"Every accepted sample (stream {subjects.metrics_stream})."),
        (subjects.logs(SID), LogLine, f"Every accepted log line (stream {subjects.logs_stream})."),
        (subjects.alerts(SID), AlertEvent, f"Alert fired or resolved (stream {subjects.alerts_stream})."),
        (subjects.agent_connected(SID), PresenceEvent, f"Agent connected (stream {subjects.events_stream})."),
        (subjects.agent_disconnected(SID), PresenceEvent, "Agent disconnected."),
        (subjects.command_results(SID), CommandResultEvent, "Every finished shell command or Docker action."),
        (subjects.audit("{user_id}"), AuditEvent, "A user's state-changing action (audit log)."),
        (subjects.presence_heartbeat(), PresenceHeartbeat, "Core NATS: the agents each gateway holds."),
        (subjects.agent_control(SID), AgentControl, "Core NATS: close an agent's socket on any gateway."),
        (subjects.agent_inbox(SID), AgentDelivery, "Core NATS request/reply: a command for the agent."),
    ]
    for subject, model, description in published:
        broker.publisher(subject, title=subject, description=description, schema=model)


def _rpc(broker: NatsBroker, subjects: Subjects) -> None:
    for method in vars(calls).values():
        if not isinstance(method, RpcMethod):
            continue
        subject = rpc_subject(subjects, method)

        async def handler(body: Any) -> None:  # documentation only, never runs
            return None

        handler.__annotations__["body"] = method.request
        handler.__name__ = subject.replace(".", "_")
        broker.subscriber(
            subject, queue=method.service, title=subject,
            description=f"Request/reply. {method.doc}".strip(),
        )(handler)


def build() -> AsyncAPI:
    subjects = Subjects()
    broker = NatsBroker()
    _events(broker, subjects)
    _rpc(broker, subjects)
    return AsyncAPI(
        broker,
        title="opswire NATS subjects",
        version=__version__,
        description=(
            "Subjects other systems may subscribe to. The prefix `opswire` is configurable "
            "(OPSWIRE_SUBJECT_PREFIX). RPC replies are {ok, data} or {ok: false, error: {code, detail}}."
        ),
    )


def render() -> str:
    return build().to_specification().to_json()
