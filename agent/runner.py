"""Runs `command` frames, each in its own process group (issue 4 §2, issue 7).

Without an allow-list a command is a shell command line (`/bin/sh -c`), the
documented full-access mode. With one, a command is never handed to a shell:
shell syntax is refused, the line is split into argv (`shlex`, POSIX rules) and
run directly once argv matches an `--allow` pattern (see `AllowPattern`).
Either way the command gets a minimal environment, never the agent's own.

A command is done when its process has exited and its output reached EOF; a
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
import shlex
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from opswire.contract.frames import CommandFrame, CommandResponse, encode

log = logging.getLogger(__name__)

REFUSED_EXIT_CODE = 126  # the shell's own "found but cannot execute"
NOT_FOUND_EXIT_CODE = 127  # and its "command not found"
_READ_CHUNK = 64 * 1024
_EOF_GRACE_AFTER_KILL_S = 1.0
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BASE_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL")

# Refused anywhere in an allow-listed command, even quoted: a reader of the audit
# log must not have to work out what a shell would have made of it.
_SHELL_SYNTAX = {
    ";": "';'",
    "&": "'&'",
    "|": "'|'",
    "`": "a backtick",
    "$": "'$'",
    "<": "'<'",
    ">": "'>'",
    "\n": "a newline",
    "\r": "a carriage return",
    "\0": "a NUL character",
}
_GLOB_CHARACTERS = set("*?[")


class PatternError(ValueError):
    """An `--allow` pattern that cannot be used; the message says how to write it."""


@dataclass(frozen=True)
class AllowPattern:
    """One `--allow` pattern, split like a command line (shlex, POSIX rules).

    The first word is the program, compared exactly with argv[0] (no wildcards).
    Each further word is an fnmatch pattern for the argument in the same place,
    so `*` matches one whole argument of any value. A last word that is a lone
    `*` stands for any number of further arguments, none included:
    `df -h *` allows `df -h` and `df -h / /home`, not `df /`.
    """

    program: str
    arguments: tuple[str, ...]
    any_more: bool

    @classmethod
    def parse(cls, pattern: str) -> AllowPattern:
        if syntax := shell_syntax_in(pattern):
            raise PatternError(f"{pattern!r}: shell syntax ({syntax}) can never match a command")
        try:
            words = shlex.split(pattern)
        except ValueError as exc:
            raise PatternError(f"{pattern!r}: {exc}") from None
        if not words:
            raise PatternError("an empty pattern allows nothing")
        program, *arguments = words
        if _GLOB_CHARACTERS & set(program):
            name = program.rstrip("*?[]")
            hint = f" ('{name} *' allows {name} with any arguments)" if name else ""
            raise PatternError(f"{pattern!r}: the program must be written exactly, without wildcards{hint}")
        any_more = bool(arguments) and arguments[-1] == "*"
        if any_more:
            arguments.pop()
        return cls(program, tuple(arguments), any_more)

    def matches(self, argv: list[str]) -> bool:
        program, *arguments = argv
        if program != self.program or len(arguments) < len(self.arguments):
            return False
        if len(arguments) > len(self.arguments) and not self.any_more:
            return False
        return all(map(fnmatch.fnmatchcase, arguments, self.arguments))


def shell_syntax_in(command: str) -> str | None:
    """The first shell metacharacter in `command`, described, or None."""
    for char in command:
        if char in _SHELL_SYNTAX:
            return _SHELL_SYNTAX[char]
    return None


def parse_allow_patterns(patterns: Iterable[str]) -> tuple[AllowPattern, ...]:
    return tuple(AllowPattern.parse(pattern) for pattern in patterns)


@dataclass(frozen=True)
class CommandPolicy:
    enabled: bool = True
    allow: tuple[str, ...] = ()
    default_timeout_s: float = 60.0
    max_output_bytes: int = 1024 * 1024
    pass_env: tuple[str, ...] = ()

    @cached_property
    def _patterns(self) -> tuple[AllowPattern, ...]:
        return parse_allow_patterns(self.allow)

    def __post_init__(self) -> None:
        self._patterns  # noqa: B018 - a bad pattern fails here, not at the first command

    def refusal(self, command: str) -> str | None:
        """Why this command may not run here, or None when it may."""
        if not self.enabled:
            return "remote commands are disabled on this agent (--no-commands)"
        if not self.allow:
            return None
        if syntax := shell_syntax_in(command):
            return (
                f"command refused: shell syntax ({syntax}) is not allowed; this agent runs "
                "only --allow listed commands, without a shell"
            )
        try:
            argv = shlex.split(command)
        except ValueError as exc:  # unbalanced quotes, a trailing backslash
            return f"command refused: it cannot be split into arguments ({exc})"
        if not argv:
            return "command refused: it names no program"
        if not any(pattern.matches(argv) for pattern in self._patterns):
            return "command refused: it matches none of this agent's --allow patterns"
        return None

    def argv(self, command: str) -> list[str] | None:
        """The argv to run without a shell, or None in full-access (shell) mode."""
        return shlex.split(command) if self.allow else None


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
            log.warning("command refused", extra={"command_id": frame.command_id, "reason": reason})
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
            float(frame.timeout_s) if "timeout_s" in frame.model_fields_set else self.policy.default_timeout_s
        )
        async with self._slots:
            return await self._execute(frame.command_id, frame.command, timeout)

    async def _start(self, command: str) -> asyncio.subprocess.Process:
        env = command_environment(self.policy.pass_env)
        pipe, devnull, stdout = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL, asyncio.subprocess.STDOUT
        argv = self.policy.argv(command)
        # start_new_session: own session => own process group, pgid == pid
        if argv is None:
            return await asyncio.create_subprocess_shell(
                command, stdin=devnull, stdout=pipe, stderr=stdout, start_new_session=True, env=env
            )
        return await asyncio.create_subprocess_exec(
            *argv, stdin=devnull, stdout=pipe, stderr=stdout, start_new_session=True, env=env
        )

    async def _execute(self, command_id: str, command: str, limit_s: float) -> CommandResponse:
        started = time.monotonic()
        log.info("command started", extra={"command_id": command_id, "timeout_s": limit_s})
        try:
            proc = await self._start(command)
        except (FileNotFoundError, PermissionError) as exc:  # exec: no such program here
            return CommandResponse(
                type="command_response",
                command_id=command_id,
                output=f"{exc.filename or command}: {exc.strerror}",
                exit_code=NOT_FOUND_EXIT_CODE if isinstance(exc, FileNotFoundError) else REFUSED_EXIT_CODE,
                duration_ms=int((time.monotonic() - started) * 1000),
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


def command_environment(pass_env: Iterable[str] = ()) -> dict[str, str]:
    """PATH, HOME, LANG, LC_ALL and the --pass-env names: never the agent's secrets.

    The agent's environment holds its API key, NATS and database URLs or cloud
    credentials; `env` run as a command must show none of them.
    """
    env = {name: os.environ[name] for name in (*BASE_ENVIRONMENT, *pass_env) if name in os.environ}
    env.setdefault("PATH", _DEFAULT_PATH)
    return env


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
        response = response.model_copy(update={"output": response.output[: max(keep, 0)], "truncated": True})
    return response
