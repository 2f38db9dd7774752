"""Runs `command` frames with a shell, each in its own process group (issue 4 §2).

A command is done when its shell has exited and its output reached EOF; a
background child that keeps the output open keeps it running until the timeout.
On timeout (or agent shutdown) the whole process group is killed, so nothing a
command started outlives it by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import signal
import time
from dataclasses import dataclass, field

from opswire.contract.frames import CommandFrame, CommandResponse, encode

log = logging.getLogger(__name__)

REFUSED_EXIT_CODE = 126  # the shell's own "found but cannot execute"
_READ_CHUNK = 64 * 1024
_EOF_GRACE_AFTER_KILL_S = 1.0


@dataclass(frozen=True)
class CommandPolicy:
    enabled: bool = True
    allow: tuple[str, ...] = ()
    default_timeout_s: float = 60.0
    max_output_bytes: int = 1024 * 1024

    def refusal(self, command: str) -> str | None:
        """Why this command may not run here, or None when it may."""
        if not self.enabled:
            return "remote commands are disabled on this agent (--no-commands)"
        if self.allow and not any(fnmatch.fnmatchcase(command, p) for p in self.allow):
            return "command refused: it matches none of this agent's --allow patterns"
        return None


@dataclass
class _Output:
    limit: int
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        self.data += chunk


class CommandRunner:
    def __init__(self, policy: CommandPolicy, max_concurrent: int = 16) -> None:
        self.policy = policy
        self._slots = asyncio.Semaphore(max_concurrent)

    async def run(self, frame: CommandFrame) -> CommandResponse:
        reason = self.policy.refusal(frame.command)
        if reason is not None:
            log.warning("command refused", extra={"command_id": frame.command_id})
            return CommandResponse(
                type="command_response",
                command_id=frame.command_id,
                output=reason,
                exit_code=REFUSED_EXIT_CODE,
                duration_ms=0,
            )
        # A frame always carries timeout_s (the contract fills in its default), so
        # only an explicitly sent value overrides the agent's own default.
        timeout = (
            float(frame.timeout_s)
            if "timeout_s" in frame.model_fields_set
            else self.policy.default_timeout_s
        )
        async with self._slots:
            return await self._execute(frame.command_id, frame.command, timeout)

    async def _execute(self, command_id: str, command: str, limit_s: float) -> CommandResponse:
        started = time.monotonic()
        log.info("command started", extra={"command_id": command_id, "timeout_s": limit_s})
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # own session => own process group, pgid == pid
            env=_command_environment(),
        )
        output = _Output(self.policy.max_output_bytes)
        timed_out = False
        try:
            await asyncio.wait_for(_finish(proc, output), limit_s)
        except TimeoutError:
            timed_out = True
            _kill_group(proc.pid)
            # Whatever is left in the pipe is kept; an escaped process holding it is not waited for.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_finish(proc, output), _EOF_GRACE_AFTER_KILL_S)
        except BaseException:  # cancelled (agent stopping): leave nothing behind
            _kill_group(proc.pid)
            raise
        finally:
            if proc.returncode is None:
                _kill_group(proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()
        duration_ms = int((time.monotonic() - started) * 1000)
        text = output.data.decode("utf-8", errors="replace")
        if timed_out:
            separator = "\n" if text and not text.endswith("\n") else ""
            text += f"{separator}[opswire: timed out after {limit_s:g} s; process group killed]"
        log.info(
            "command finished",
            extra={"command_id": command_id, "exit_code": proc.returncode, "timed_out": timed_out},
        )
        return CommandResponse(
            type="command_response",
            command_id=command_id,
            output=text,
            exit_code=None if timed_out else proc.returncode,
            duration_ms=duration_ms,
            timed_out=timed_out,
            truncated=output.truncated,
        )


async def _finish(proc: asyncio.subprocess.Process, output: _Output) -> None:
    assert proc.stdout is not None
    # Keep draining past the cap so a chatty command never blocks on a full pipe.
    while chunk := await proc.stdout.read(_READ_CHUNK):
        output.add(chunk)
    await proc.wait()


def _command_environment() -> dict[str, str]:
    """The agent's environment minus its own settings: `env` must not print the API key."""
    return {name: value for name, value in os.environ.items() if not name.startswith("OPSWIRE_")}


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def fit_output(response: CommandResponse, max_frame_bytes: int) -> CommandResponse:
    """Shrink the output until the encoded frame fits the gateway's frame limit.

    JSON escaping can turn a 1 MiB output into a larger frame, and the gateway
    closes the socket (1009) on an oversized frame instead of answering.
    """
    while (size := len(encode(response).encode("utf-8"))) > max_frame_bytes and response.output:
        keep = int(len(response.output) * (max_frame_bytes - 4096) / size)
        response = response.model_copy(
            update={"output": response.output[: max(keep, 0)], "truncated": True}
        )
    return response
