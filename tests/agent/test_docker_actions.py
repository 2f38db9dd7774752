from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
    response = await DockerActions(enabled=False).handle(
        DockerCommandFrame(command_id="d-3", action="list")
    )
    assert (response.success, "disabled" in response.message) == (False, True)
