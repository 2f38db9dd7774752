"""The ChatOps dialect's translation, frame by frame (no sockets: the e2e test drives those)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from gateway.realtime.chatops import BYTES_PER_GB, AgentDialect, Bootstrapped, ChatOpsDialect
from opswire.contract.frames import (
    CommandFrame,
    CommandResponse,
    DockerAction,
    DockerCommandFrame,
    DockerResponse,
    FrameError,
    MetricsFrame,
    Ping,
    parse_agent_frame,
)
from tests.helpers.chatops_agent import FakeHost, go_json, go_map, sample_data

SERVER_ID = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
NOW = datetime(2026, 12, 1, 20, 21, 14, tzinfo=UTC)


def wire(frame: dict[str, Any]) -> str:
    return go_json(frame) + "\n"


def metrics(**data: Any) -> str:
    return wire(go_map(type="metrics", data=data or sample_data(SERVER_ID, NOW)))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def chatops_dialect(clock: Clock | None = None) -> AgentDialect:
    dialect = AgentDialect()
    dialect.inbound(metrics())
    assert dialect.chatops is not None
    if clock is not None:
        dialect.chatops = ChatOpsDialect(clock)
    return dialect


def test_a_sample_maps_onto_the_contract_with_gib_as_bytes_and_its_objects_kept() -> None:
    data = sample_data(SERVER_ID, NOW, cpu=23.5, memory=61.25, containers=FakeHost.CONTAINERS)
    frame = parse_agent_frame(AgentDialect().inbound(metrics(**data)))

    assert isinstance(frame, MetricsFrame)
    assert (frame.cpu_percent, frame.memory_percent) == (23.5, 61.25)
    assert frame.timestamp == NOW and frame.server_id == SERVER_ID
    (disk,) = frame.disk_usage
    assert (disk.path, disk.percent) == ("/", 42.5)
    assert (disk.total, disk.used, disk.free) == (
        100 * BYTES_PER_GB,
        round(42.5 * BYTES_PER_GB),
        round(57.5 * BYTES_PER_GB),
    )
    (net,) = frame.network
    assert net.model_dump(exclude_none=True) == {
        "interface": "all",
        "bytes_sent": 123_456_789,
        "bytes_recv": 987_654_321,
        "packets_sent": 1_000,
        "packets_recv": 2_000,
    }
    extras = frame.model_extra or {}
    assert extras["cpu"] == {"usage_percent": 23.5, "cores": 4, "frequency_mhz": 2400.0}
    assert extras["memory"]["total_gb"] == 16.0 and extras["disk"]["available_gb"] == 57.5
    assert frame.containers == FakeHost.CONTAINERS
    assert isinstance(frame.processes, list) and len(frame.processes) == 300
    assert frame.processes[7]["name"] == "<defunct>"  # Go's \u003c escapes decoded


def test_a_sample_without_containers_has_none() -> None:
    frame = parse_agent_frame(AgentDialect().inbound(metrics()))
    assert isinstance(frame, MetricsFrame) and frame.containers is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["cpu"].pop("usage_percent"), "data.cpu.usage_percent: Field required"),
        (lambda d: d.pop("memory"), "data.memory: Field required"),
        (lambda d: d["disk"].update(usage_percent=101), "data.disk.usage_percent"),
        (lambda d: d["disk"].update(total_gb=1e30), "data.disk.total_gb"),
        (lambda d: d["network"].update(bytes_sent=-1), "data.network.bytes_sent"),
        (lambda d: d["network"].update(bytes_recv=2**64), "data.network.bytes_recv"),
        (lambda d: d.update(processes="many"), "data.processes"),
        (lambda d: d.update(timestamp="yesterday"), "timestamp"),
        (lambda d: d.update(timestamp="2999-01-01T00:00:00Z"), "future"),
    ],
)
def test_a_bad_sample_is_refused_with_a_reason(change: Any, reason: str) -> None:
    data = sample_data(SERVER_ID, NOW)
    change(data)
    dialect = AgentDialect()
    with pytest.raises(FrameError) as refused:
        parse_agent_frame(dialect.inbound(metrics(**data)))
    assert reason in refused.value.detail
    assert dialect.chatops is not None, "still its dialect: later frames are translated"


def test_a_sample_with_nul_is_refused_like_a_seed_sample() -> None:
    data = sample_data(SERVER_ID, NOW)
    data["processes"][0]["name"] = "bad\x00name"
    with pytest.raises(FrameError, match="NUL"):
        parse_agent_frame(AgentDialect().inbound(metrics(**data)))


def test_seed_agents_are_passed_through_untouched_and_get_no_ack() -> None:
    dialect = AgentDialect()
    ping = '{"type":"ping"}'
    assert dialect.inbound(ping) is ping  # tells nothing: still undecided
    seed = orjson.dumps(
        {
            "type": "metrics",
            "cpu_percent": 1,
            "memory_percent": 2,
            "disk_usage": [],
            "network": [],
            "timestamp": NOW.isoformat(),
            "data": {"kept": True},
        }
    )
    assert dialect.inbound(seed) is seed
    assert dialect.chatops is None
    frame = parse_agent_frame(seed)
    assert isinstance(frame, MetricsFrame) and dialect.accepted(frame) is None
    later = metrics()
    assert dialect.inbound(later) is later, "decided once per connection"
    command = CommandFrame(command_id="c1", command="uptime")
    assert dialect.outbound(command) is command


def test_ping_and_junk_leave_the_dialect_undecided() -> None:
    dialect = AgentDialect()
    for raw in ('{"type":"ping"}', "not json", b"\x00\x01", '{"no":"type"}'):
        assert dialect.inbound(raw) == raw
    assert isinstance(parse_agent_frame(dialect.inbound('{"type":"ping"}\n')), Ping)
    dialect.inbound(metrics())
    assert dialect.chatops is not None


def test_an_accepted_sample_is_acked_and_its_containers_are_the_listing() -> None:
    dialect = chatops_dialect()
    listing = dialect.outbound(DockerCommandFrame(command_id="l0", action="list"))
    assert isinstance(listing, DockerResponse) and listing.success is False
    assert "No metrics sample" in listing.message

    frame = parse_agent_frame(
        dialect.inbound(metrics(**sample_data(SERVER_ID, NOW, containers=FakeHost.CONTAINERS)))
    )
    assert isinstance(frame, MetricsFrame)
    ack = dialect.accepted(frame)
    assert ack is not None and ack.model_dump() == {"type": "metrics_received", "status": "ok"}
    listing = dialect.outbound(DockerCommandFrame(command_id="l1", action="list"))
    assert isinstance(listing, DockerResponse) and listing.success is True
    assert listing.command_id == "l1" and listing.data == FakeHost.CONTAINERS

    frame = parse_agent_frame(dialect.inbound(metrics()))  # Docker went away: `null`
    assert isinstance(frame, MetricsFrame)
    dialect.accepted(frame)
    listing = dialect.outbound(DockerCommandFrame(command_id="l2", action="list"))
    assert isinstance(listing, DockerResponse) and listing.success and listing.data == []


def test_a_shell_command_goes_out_as_execute_command_and_its_duration_is_measured_here() -> None:
    clock = Clock()
    dialect = chatops_dialect(clock)
    out = dialect.outbound(CommandFrame(command_id="cmd-1", command="uptime", timeout_s=5))
    assert out.model_dump() == {"type": "execute_command", "command": "uptime", "request_id": "cmd-1"}
    clock.now += 1.25
    reply = wire(
        go_map(type="command_result", request_id="cmd-1", data=go_map(output="up 3 days\n", exit_code=0))
    )
    frame = parse_agent_frame(dialect.inbound(reply))
    assert isinstance(frame, CommandResponse)
    assert (frame.command_id, frame.output, frame.exit_code, frame.duration_ms) == (
        "cmd-1",
        "up 3 days\n",
        0,
        1250,
    )


def test_its_error_for_a_shell_command_is_a_failed_command() -> None:
    dialect = chatops_dialect()
    dialect.outbound(CommandFrame(command_id="cmd-2", command="x"))
    frame = parse_agent_frame(
        dialect.inbound(wire(go_map(type="error", message="Invalid command", request_id="cmd-2")))
    )
    assert isinstance(frame, CommandResponse)
    assert frame.exit_code is None and frame.output == "Invalid command"


@pytest.mark.parametrize(
    ("action", "sent", "reply_type", "status"),
    [
        ("start", "start_container", "container_started", "started"),
        ("stop", "stop_container", "container_stopped", "stopped"),
        ("restart", "restart_container", "container_restarted", "restarted"),
    ],
)
def test_docker_actions_go_out_in_its_frames_and_come_back_as_docker_responses(
    action: DockerAction, sent: str, reply_type: str, status: str
) -> None:
    dialect = chatops_dialect()
    out = dialect.outbound(DockerCommandFrame(command_id="d1", action=action, container_id="web"))
    assert out.model_dump() == {"type": sent, "container_id": "web", "request_id": "d1"}
    frame = parse_agent_frame(
        dialect.inbound(
            wire(go_map(type=reply_type, request_id="d1", data=go_map(container_id="web", status=status)))
        )
    )
    assert isinstance(frame, DockerResponse) and frame.command_id == "d1"
    assert frame.success is True and frame.message == f"Container web {status}"
    assert frame.data == {"container_id": "web", "status": status}


def test_logs_and_docker_failures() -> None:
    dialect = chatops_dialect()
    out = dialect.outbound(
        DockerCommandFrame(command_id="g1", action="logs", container_id="web", params={"tail": 3})
    )
    assert out.model_dump() == {
        "type": "get_container_logs",
        "container_id": "web",
        "request_id": "g1",
        "tail": 3,
    }
    frame = parse_agent_frame(
        dialect.inbound(
            wire(
                go_map(
                    type="container_logs", request_id="g1", data=go_map(container_id="web", logs=["a", "b"])
                )
            )
        )
    )
    assert isinstance(frame, DockerResponse) and frame.success and frame.data == "a\nb"

    dialect.outbound(DockerCommandFrame(command_id="g2", action="stop", container_id="ghost"))
    frame = parse_agent_frame(
        dialect.inbound(
            wire(
                go_map(
                    type="error",
                    message="Failed to stop container: No such container: ghost",
                    request_id="g2",
                )
            )
        )
    )
    assert isinstance(frame, DockerResponse) and frame.success is False
    assert frame.message == "Failed to stop container: No such container: ghost"

    inspect = dialect.outbound(DockerCommandFrame(command_id="g3", action="inspect", container_id="web"))
    assert isinstance(inspect, DockerResponse) and inspect.success is False
    assert "inspect" in inspect.message


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (go_map(type="command_result", data=go_map(output="x", exit_code=0)), "request_id: Field required"),
        (go_map(type="command_result", request_id="r", data=go_map(output="x")), "data.exit_code"),
        (
            go_map(type="command_result", request_id="r", data=go_map(output="x", exit_code=2**40)),
            "data.exit_code",
        ),
        (
            go_map(type="container_started", request_id="r", data=go_map(status="started")),
            "data.container_id",
        ),
        (go_map(type="error", message="no id"), "request_id"),
        (
            go_map(type="container_logs", request_id="r", data=go_map(container_id="w", logs=[1])),
            "data.logs.0",
        ),
    ],
)
def test_bad_replies_are_refused_with_a_reason(frame: dict[str, Any], reason: str) -> None:
    dialect = chatops_dialect()
    with pytest.raises(FrameError) as refused:
        parse_agent_frame(dialect.inbound(wire(frame)))
    assert reason in refused.value.detail


def test_an_unanswered_command_is_forgotten_and_the_memory_is_bounded() -> None:
    dialect = chatops_dialect()
    chatops = dialect.chatops
    assert chatops is not None
    for i in range(1500):
        dialect.outbound(CommandFrame(command_id=f"c{i}", command="true"))
    assert len(chatops._sent) == 1024
    dialect.forget("c1499")
    assert "c1499" not in chatops._sent


def test_a_reply_to_an_unknown_request_still_translates() -> None:
    # The session answers it with `unknown_command`, as for seed agents.
    frame = parse_agent_frame(
        chatops_dialect().inbound(
            wire(go_map(type="command_result", request_id="nobody", data=go_map(output="", exit_code=0)))
        )
    )
    assert isinstance(frame, CommandResponse) and frame.duration_ms == 0


def test_samples_of_many_seconds_keep_their_own_timestamps() -> None:
    dialect = chatops_dialect()
    stamps = []
    for i in range(3):
        moment = NOW - timedelta(seconds=i)
        frame = parse_agent_frame(dialect.inbound(metrics(**sample_data(SERVER_ID, moment))))
        assert isinstance(frame, MetricsFrame)
        stamps.append(frame.timestamp)
    assert stamps == [NOW, NOW - timedelta(seconds=1), NOW - timedelta(seconds=2)]


def test_a_key_that_bootstrapped_gets_chatops_commands_before_its_first_sample() -> None:
    dialect = AgentDialect(chatops_likely=True)
    sent = dialect.outbound(CommandFrame(command_id="early", command="uptime"))
    assert sent.model_dump(exclude_none=True) == {
        "type": "execute_command",
        "command": "uptime",
        "request_id": "early",
    }
    answer = wire(go_map(type="command_result", request_id="early", data=go_map(output="up", exit_code=0)))
    response = parse_agent_frame(dialect.inbound(answer))
    assert isinstance(response, CommandResponse) and response.command_id == "early"
    assert dialect.chatops is not None


def test_a_bootstrapped_key_that_speaks_seed_is_taken_as_seed() -> None:
    dialect = AgentDialect(chatops_likely=True)
    seed = orjson.dumps(
        {
            "type": "metrics",
            "cpu_percent": 1,
            "memory_percent": 2,
            "disk_usage": [],
            "timestamp": NOW.isoformat(),
        }
    )
    assert dialect.inbound(seed) is seed and dialect.chatops is None
    command = CommandFrame(command_id="c1", command="uptime")
    assert dialect.outbound(command) is command


def test_bootstrapped_keys_are_remembered_for_a_while_and_bounded() -> None:
    keys = Bootstrapped(size=2, ttl_s=10)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    keys.note(first, now=0)
    assert keys.recent(first, now=9.9) and not keys.recent(first, now=10.1)
    keys.note(second, now=1)
    keys.note(third, now=2)
    assert not keys.recent(first, now=3), "the oldest is dropped past the bound"
    assert keys.recent(second, now=3) and keys.recent(third, now=3)
    assert not keys.recent(uuid.uuid4(), now=3)
