"""`docker_command` frames through the Docker Engine API (the optional `docker` SDK).

The SDK is imported lazily and every call runs in a thread (it is blocking
HTTP). Without the SDK or a reachable engine each action answers
`success=false` with a clear message; the agent itself keeps working.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from typing import Any

from opswire.contract.frames import CONTAINER_ID_PATTERN, DockerCommandFrame, DockerResponse, encode

log = logging.getLogger(__name__)

_DEFAULT_TAIL = 100
_MAX_TAIL = 10_000
_ENGINE_TIMEOUT_S = 10
_DEFAULT_HOST = "unix:///var/run/docker.sock"
# Checked again here, whichever way the frame was built: the SDK pastes the id into a URL path.
_CONTAINER_ID = re.compile(CONTAINER_ID_PATTERN)


class DockerActionError(Exception):
    """No SDK, no engine, or a bad request: the message is shown to the user as is."""


class DockerActions:
    def __init__(self, enabled: bool = True, max_frame_bytes: int = 1024 * 1024) -> None:
        self.enabled = enabled
        self.max_frame_bytes = max_frame_bytes
        self._client: Any = None

    async def handle(self, frame: DockerCommandFrame) -> DockerResponse:
        try:
            message, data = await asyncio.to_thread(self._run, frame)
            success = True
        except DockerActionError as exc:
            message, data, success = str(exc), None, False
        except Exception as exc:  # docker.errors.* and requests errors: report, never crash
            message, data, success = _describe(exc), None, False
            if type(exc).__name__ in {"ConnectionError", "APIError"}:
                self._client = None  # the engine may have restarted: reconnect next time
        log.info(
            "docker action",
            extra={"command_id": frame.command_id, "action": frame.action, "success": success},
        )
        response = DockerResponse(
            type="docker_response",
            command_id=frame.command_id,
            success=success,
            message=message,
            data=data,
        )
        return self._fit(response)

    def _run(self, frame: DockerCommandFrame) -> tuple[str, Any]:
        container_id = None if frame.action == "list" else _checked_container_id(frame)
        client = self._engine()
        if container_id is None:
            containers = client.containers.list(all=True, sparse=True)
            return f"{len(containers)} containers", [_summary(c.attrs) for c in containers]
        container = client.containers.get(container_id)
        if frame.action in ("start", "stop", "restart"):
            getattr(container, frame.action)()
            done = {"start": "started", "stop": "stopped", "restart": "restarted"}[frame.action]
            return f"container {container.name} {done}", None
        if frame.action == "logs":
            tail = _tail(frame.params.get("tail"))
            text = container.logs(tail=tail).decode("utf-8", errors="replace")
            return f"last {tail} lines of {container.name}", text
        return f"container {container.name}", container.attrs  # inspect

    def _engine(self) -> Any:
        if not self.enabled:
            raise DockerActionError("Docker actions are disabled on this agent (--no-docker)")
        try:
            import docker  # optional extra: pip install 'opswire[docker]'
        except ImportError:
            raise DockerActionError(
                "Docker SDK not installed on this agent (pip install 'opswire[docker]')"
            ) from None
        _probe_unix_socket()
        if self._client is not None:
            return self._client
        try:
            self._client = docker.from_env(timeout=_ENGINE_TIMEOUT_S)
        except docker.errors.DockerException as exc:
            raise DockerActionError(f"Docker engine not reachable: {exc}") from None
        return self._client

    def _fit(self, response: DockerResponse) -> DockerResponse:
        """Keep the frame under the gateway's size limit (big logs or inspect output)."""
        size = len(encode(response).encode("utf-8"))
        if size <= self.max_frame_bytes:
            return response
        if isinstance(response.data, str):
            # Keep the newest log lines: cut from the front.
            keep = int(len(response.data) * (self.max_frame_bytes - 4096) / size)
            return response.model_copy(
                update={
                    "data": response.data[-keep:] if keep > 0 else "",
                    "message": response.message + " (truncated)",
                }
            )
        return response.model_copy(
            update={"data": None, "message": response.message + " (result too large to send)"}
        )


def _probe_unix_socket() -> None:
    """Fail fast, with a clear message, when the engine's unix socket does not answer.

    The SDK leaks a socket on every failed unix connect; checking first avoids
    that and names the path the user has to look at.
    """
    host = os.environ.get("DOCKER_HOST") or _DEFAULT_HOST
    if not host.startswith("unix://"):
        return
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(_ENGINE_TIMEOUT_S)
        try:
            probe.connect(path)
        except OSError as exc:
            raise DockerActionError(f"Docker engine not reachable at {host}: {exc.strerror or exc}") from None


def _checked_container_id(frame: DockerCommandFrame) -> str:
    container_id = frame.container_id
    if not container_id:
        raise DockerActionError(f"action '{frame.action}' needs a container_id")
    if not _CONTAINER_ID.fullmatch(container_id):  # fullmatch: no trailing newline
        raise DockerActionError(
            "container_id refused: a container id or name is letters, digits, '_', '.' and '-' "
            "(starting with a letter or digit, at most 255 characters)"
        )
    return container_id


def _summary(attrs: dict[str, Any]) -> dict[str, Any]:
    names = attrs.get("Names") or []
    return {
        "id": attrs.get("Id", ""),
        "name": names[0].lstrip("/") if names else "",
        "image": attrs.get("Image", ""),
        "state": attrs.get("State", ""),
        "status": attrs.get("Status", ""),
    }


def _tail(value: Any) -> int:
    if value is None:
        return _DEFAULT_TAIL
    try:
        tail = int(value)
    except (TypeError, ValueError):
        raise DockerActionError("params.tail must be a whole number") from None
    if not 0 <= tail <= _MAX_TAIL:
        raise DockerActionError(f"params.tail must be between 0 and {_MAX_TAIL}")
    return tail


def _describe(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "NotFound":
        return "no such container"
    explanation = getattr(exc, "explanation", None)
    return f"Docker error: {explanation or exc}"
