from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from agent.runner import REFUSED_EXIT_CODE, CommandPolicy, CommandRunner, fit_output
from opswire.contract.frames import CommandFrame, CommandResponse, encode, parse_agent_frame


def frame(command: str, timeout_s: int | None = None, command_id: str = "c-1") -> CommandFrame:
    if timeout_s is None:
        return CommandFrame(command_id=command_id, command=command)
    return CommandFrame(command_id=command_id, command=command, timeout_s=timeout_s)


def runner(**policy: object) -> CommandRunner:
    return CommandRunner(CommandPolicy(**policy))  # type: ignore[arg-type]


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


async def test_output_and_exit_codes() -> None:
    ok = await runner().run(frame("echo out; echo err >&2"))
    assert (ok.output, ok.exit_code, ok.timed_out, ok.truncated) == ("out\nerr\n", 0, False, False)
    failed = await runner().run(frame("exit 3"))
    assert failed.exit_code == 3
    missing = await runner().run(frame("no-such-command-opswire"))
    assert missing.exit_code == 127
    # What the gateway will parse: a valid contract frame.
    assert isinstance(parse_agent_frame(encode(ok)), CommandResponse)
    assert ok.duration_ms >= 0


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The background child would outlive its shell; the shell itself also hangs.
    command = f"sleep 300 & echo $! > {pid_file}; sleep 300"
    # No wall-clock bound (it would flake under load): had the kill failed, `sleep 300`
    # would outlast the test's own timeout.
    result = await runner().run(frame(command, timeout_s=1))
    assert result.timed_out is True
    assert result.exit_code is None
    assert "timed out after 1 s" in result.output
    assert result.duration_ms >= 1000
    child = int(pid_file.read_text())
    for _ in range(150):  # init reaps the killed orphan asynchronously
        if _gone(child):
            break
        await asyncio.sleep(0.02)
    assert _gone(child), "the command's background child survived the timeout"


async def test_default_timeout_applies_when_the_frame_has_none() -> None:
    quick = runner(default_timeout_s=0.3)
    result = await quick.run(frame("sleep 30"))
    assert result.timed_out is True
    assert "timed out after 0.3 s" in result.output  # the default's limit, not the command's end


async def test_output_is_capped_and_marked_truncated() -> None:
    result = await runner(max_output_bytes=1000).run(frame("head -c 50000 /dev/zero | tr '\\0' a"))
    assert result.exit_code == 0  # the rest was drained, so the command was never blocked
    assert result.truncated is True
    assert result.output == "a" * 1000


def test_fit_output_keeps_frames_under_the_gateway_limit() -> None:
    big = CommandResponse(
        type="command_response", command_id="c", output='"\n' * 400_000, exit_code=0, duration_ms=1
    )
    fitted = fit_output(big, 256 * 1024)
    assert len(encode(fitted).encode()) <= 256 * 1024
    assert fitted.truncated is True and fitted.output


async def test_commands_run_concurrently(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    # The first waits for a file only the second creates: run one after the other, it times out.
    waiter = frame(f"while [ ! -e {flag} ]; do sleep 0.01; done; echo seen", 5, "wait")
    creator = frame(f"touch {flag}; echo made", 5, "make")
    first, second = await asyncio.gather(runner().run(waiter), runner().run(creator))
    assert (first.output, first.timed_out) == ("seen\n", False)
    assert second.output == "made\n"


async def test_no_commands_refuses_with_a_clear_message(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    result = await runner(enabled=False).run(frame(f"touch {marker}"))
    assert result.exit_code == REFUSED_EXIT_CODE
    assert "disabled" in result.output
    assert not marker.exists()


@pytest.mark.parametrize(
    ("command", "allowed"),
    [("uptime", True), ("df -h /", True), ("rm -rf /tmp/x", False), ("uptime; rm -rf /", False)],
)
async def test_allow_patterns_match_program_and_arguments(command: str, allowed: bool) -> None:
    # More in test_allowlist.py.
    result = await runner(allow=("uptime", "df *")).run(frame(command))
    if allowed:
        assert result.exit_code != REFUSED_EXIT_CODE
    else:
        assert result.exit_code == REFUSED_EXIT_CODE
        assert "--allow" in result.output


async def test_commands_do_not_see_the_agents_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSWIRE_API_KEY", "secret-key")
    monkeypatch.setenv("OPSWIRE_TEST_PLAIN", "x")
    result = await runner().run(frame('echo "${OPSWIRE_API_KEY:-unset} ${HOME:+home}"'))
    assert result.output == "unset home\n"
