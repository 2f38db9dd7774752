"""Result events fit one NATS message: output (shell) is cut, data (docker) dropped."""

from __future__ import annotations

import json
import uuid

from commands.events import encode_within
from opswire.contract.events import CommandResultEvent, DockerResultEvent, ShellResultEvent
from opswire.contract.types import utc_now


def test_a_long_output_is_cut_and_marked_truncated() -> None:
    event = ShellResultEvent(
        command_id="c1",
        server_id=uuid.uuid4(),
        command="yes",
        status="succeeded",
        output="y\n" * 10_000,
        exit_code=0,
        duration_ms=5,
        created_at=utc_now(),
    )
    payload = encode_within(event, 4096)
    assert len(payload) <= 4096
    published = json.loads(payload)
    assert published["truncated"] is True and published["output"].startswith("y\ny\n")
    assert CommandResultEvent.model_validate_json(payload).root.command_id == "c1"


def test_docker_data_is_dropped_when_too_large() -> None:
    event = DockerResultEvent(
        command_id="d1",
        server_id=uuid.uuid4(),
        action="logs",
        container_id="web",
        success=True,
        message="ok",
        data="x" * 10_000,
        created_at=utc_now(),
    )
    published = json.loads(encode_within(event, 4096))
    assert published["data"] is None and published["kind"] == "docker"
    assert (published["action"], published["container_id"]) == ("logs", "web")
