"""Checks on a Docker action before it is sent to an agent (DESIGN §9 'Docker')."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opswire.contract.frames import DOCKER_CONTAINER_ACTIONS
from opswire.contract.rpc import DockerRun
from opswire.runtime.rpc import RpcError

DEFAULT_LOGS_TAIL = 100
MAX_LOGS_TAIL = 10_000
# Actions that act on one container; `list` is the only one that takes none.
NEEDS_CONTAINER = (*DOCKER_CONTAINER_ACTIONS, "logs", "inspect")


@dataclass(frozen=True)
class DockerAction:
    action: str
    container_id: str | None
    params: dict[str, Any]

    @property
    def command_text(self) -> str:
        return f"docker {self.action} {self.container_id}" if self.container_id else f"docker {self.action}"


def _invalid(field: str, msg: str) -> RpcError:
    # Same shape as a validation failure of the request model.
    return RpcError("invalid", [{"loc": [field], "msg": msg, "type": "value_error"}])


def checked_action(request: DockerRun) -> DockerAction:
    """The action as it will be sent, or RpcError("invalid") naming what is wrong."""
    action = request.action
    if action in NEEDS_CONTAINER and not request.container_id:
        raise _invalid("container_id", f"'{action}' needs a container_id")
    if action == "list" and request.container_id:
        raise _invalid("container_id", "'list' takes no container_id")
    if action != "logs":
        if request.params:
            raise _invalid("params", f"'{action}' takes no params")
        return DockerAction(action, request.container_id, {})
    unknown = sorted(set(request.params) - {"tail"})
    if unknown:
        raise _invalid("params", f"unknown params for 'logs': {', '.join(unknown)}")
    tail = request.params.get("tail", DEFAULT_LOGS_TAIL)
    # bool is an int in Python; `true` is not a line count.
    if not isinstance(tail, int) or isinstance(tail, bool) or not 1 <= tail <= MAX_LOGS_TAIL:
        raise _invalid("params.tail", f"tail must be an integer from 1 to {MAX_LOGS_TAIL}")
    return DockerAction(action, request.container_id, {"tail": tail})
