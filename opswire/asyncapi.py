"""The AsyncAPI document of opswire's NATS subjects, generated from the contract.

A broker that never connects declares every public subject with its payload
model; FastStream renders the document. FastStream has no notion of a reply, so
each RPC operation's `reply` (the envelope around the method's reply type) is
added to the rendered document. `opswire asyncapi` prints it and
docs/asyncapi.json is the shipped copy (a test keeps it current).
"""

from __future__ import annotations

import json
from typing import Any, get_args

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel, TypeAdapter

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
    SessionsRevoked,
)
from opswire.contract.rpc import RpcMethod
from opswire.contract.subjects import Subjects
from opswire.contract.telemetry import LogLine, MetricsSample
from opswire.runtime.rpc import ErrorCode, rpc_subject

SID = "{server_id}"
SCHEMA_REF = "#/components/schemas/{model}"


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
        (subjects.sessions_revoked(), SessionsRevoked, "Core NATS: sessions that ended (auth -> gateways)."),
    ]
    for subject, model, description in published:
        broker.publisher(subject, title=subject, description=description, schema=model)


def _methods() -> list[RpcMethod[Any, Any]]:
    return [method for method in vars(calls).values() if isinstance(method, RpcMethod)]


def _rpc(broker: NatsBroker, subjects: Subjects) -> None:
    for method in _methods():
        subject = rpc_subject(subjects, method)

        async def handler(body: Any) -> None:  # documentation only, never runs
            return None

        handler.__annotations__["body"] = method.request
        handler.__name__ = subject.replace(".", "_")
        broker.subscriber(
            subject,
            queue=method.service,
            title=subject,
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


def _schema_of(reply: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    """JSON schema of a reply type; models (and what they use) become components."""
    schema = TypeAdapter(reply).json_schema(ref_template=SCHEMA_REF)
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    if isinstance(reply, type) and issubclass(reply, BaseModel):
        schemas.setdefault(reply.__name__, schema)
        return {"$ref": SCHEMA_REF.format(model=reply.__name__)}
    return schema


def _add_replies(document: dict[str, Any], subjects: Subjects) -> None:
    components = document["components"]
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    schemas["RpcErrorReply"] = {
        "title": "RpcErrorReply",
        "type": "object",
        "required": ["ok", "error"],
        "properties": {
            "ok": {"const": False},
            "error": {
                "type": "object",
                "required": ["code"],
                "properties": {"code": {"enum": list(get_args(ErrorCode))}, "detail": {}},
            },
        },
    }
    for method in _methods():
        subject = rpc_subject(subjects, method)
        name = f"{subject}:Reply"
        components["messages"][name] = {
            "title": name,
            "correlationId": {"location": "$message.header#/correlation_id"},
            "payload": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["ok", "data"],
                        "properties": {"ok": {"const": True}, "data": _schema_of(method.reply, schemas)},
                    },
                    {"$ref": SCHEMA_REF.format(model="RpcErrorReply")},
                ]
            },
        }
        document["channels"][subject]["messages"]["Reply"] = {"$ref": f"#/components/messages/{name}"}
        document["operations"][subject]["reply"] = {
            "channel": {"$ref": f"#/channels/{subject}"},
            "messages": [{"$ref": f"#/channels/{subject}/messages/Reply"}],
        }


def render() -> str:
    document: dict[str, Any] = json.loads(build().to_specification().to_json())
    _add_replies(document, Subjects())
    return json.dumps(document, indent=4, ensure_ascii=False)
