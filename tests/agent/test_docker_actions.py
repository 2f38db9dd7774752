from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.docker_actions import DockerActions
from opswire.contract.frames import DockerCommandFrame, DockerResponse, encode, parse_agent_frame


@pytest.fixture
def dead_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")


@pytest.mark.parametrize(
    ("action", "container_id"),
    [
        ("list", None),
        ("start", "web"),
        ("stop", "web"),
        ("restart", "web"),
        ("logs", "web"),
        ("inspect", "web"),
    ],
)
async def test_without_an_engine_every_action_fails_cleanly(
    dead_engine: None, action: str, container_id: str | None
) -> None:
    frame = DockerCommandFrame(command_id="d-1", action=action, container_id=container_id)  # type: ignore[arg-type]
    response = await DockerActions().handle(frame)
    assert response.success is False
    assert response.command_id == "d-1"
    assert "Docker engine not reachable" in response.message
    assert isinstance(parse_agent_frame(encode(response)), DockerResponse)


async def test_without_the_sdk_the_answer_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)  # import docker -> ImportError
    response = await DockerActions().handle(DockerCommandFrame(command_id="d-2", action="list"))
    assert response.success is False
    assert "opswire[docker]" in response.message


async def test_disabled_docker_is_refused() -> None:
    response = await DockerActions(enabled=False).handle(DockerCommandFrame(command_id="d-3", action="list"))
    assert (response.success, "disabled" in response.message) == (False, True)


BAD_CONTAINER_IDS = ["../etc", "..", "a/b", "a b", "x?y", "x#y", "x%2fy", "-x", "web\n", "a" * 256]


@pytest.mark.parametrize("container_id", [*BAD_CONTAINER_IDS, ""])
def test_the_frame_refuses_what_is_not_a_container_id_or_name(container_id: str) -> None:
    with pytest.raises(ValidationError):
        DockerCommandFrame(command_id="d-4", action="stop", container_id=container_id)


@pytest.mark.parametrize("container_id", ["web", "my_app.1-blue", "0123456789ab", "f" * 64])
def test_the_frame_accepts_names_and_ids(container_id: str) -> None:
    frame = DockerCommandFrame(command_id="d-4", action="stop", container_id=container_id)
    assert frame.container_id == container_id


@pytest.mark.parametrize("container_id", BAD_CONTAINER_IDS)
async def test_the_agent_refuses_a_bad_container_id_however_the_frame_was_built(
    dead_engine: None, container_id: str
) -> None:
    # model_construct skips validation: a frame the contract did not check.
    frame = DockerCommandFrame.model_construct(
        type="docker_command", command_id="d-5", action="logs", container_id=container_id, params={}
    )
    response = await DockerActions().handle(frame)
    assert response.success is False
    # Refused before the (dead) engine is even tried.
    assert response.message.startswith("container_id refused")
