"""The whole agent, in-process and as `python -m opswire agent`, against the fake gateway."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest
from pydantic import SecretStr

from agent.main import Agent
from agent.settings import AgentSettings
from opswire.contract.frames import (
    CommandFrame,
    CommandResponse,
    DockerCommandFrame,
    DockerResponse,
    LogFrame,
    MetricsFrame,
    encode,
)
from tests.agent.fake_gateway import GOOD_KEY, FakeGateway


async def test_agent_sends_metrics_logs_and_answers_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    app_log = tmp_path / "app.log"
    async with FakeGateway() as gw:
        agent = Agent(
            AgentSettings(
                url=gw.url,
                api_key=SecretStr(GOOD_KEY),
                metrics_interval_s=0.1,
                log_files=[app_log],
                log_poll_s=0.02,
            )
        )
        task = asyncio.create_task(agent.run())
        try:
            accepted = await gw.next_connection()
            _, first = await gw.next_frame("metrics")
            _, second = await gw.next_frame("metrics")
            assert isinstance(first, MetricsFrame) and isinstance(second, MetricsFrame)
            assert second.timestamp > first.timestamp

            app_log.write_text("ERROR something broke\n")  # created after start: read from its start
            _, line = await gw.next_frame("log")
            assert isinstance(line, LogFrame)
            assert (line.level, line.message, line.source) == (
                "error",
                "ERROR something broke",
                str(app_log),
            )

            await accepted.ws.send(encode(CommandFrame(command_id="c-1", command="echo hello")))
            await accepted.ws.send(encode(DockerCommandFrame(command_id="d-1", action="list")))
            _, reply = await gw.next_frame("command_response")
            assert isinstance(reply, CommandResponse)
            assert (reply.command_id, reply.output, reply.exit_code) == ("c-1", "hello\n", 0)
            _, docker = await gw.next_frame("docker_response")
            assert isinstance(docker, DockerResponse)
            assert (docker.command_id, docker.success) == ("d-1", False)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_cli_agent_keeps_the_key_out_of_argv_and_stops_cleanly(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    async with FakeGateway() as gw:
        env = {**os.environ, "OPSWIRE_API_KEY": GOOD_KEY, "DOCKER_HOST": "unix:///nonexistent"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "opswire", "agent", "--url", gw.url, "--interval", "0.2",
            env=env, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            accepted = await gw.next_connection(within_s=15)
            assert gw.keys_seen == [GOOD_KEY]
            assert GOOD_KEY not in " ".join(psutil.Process(proc.pid).cmdline())
            await gw.next_frame("metrics")

            # A command still running when the agent stops is killed with its whole group.
            command = f"sleep 300 & echo $! > {pid_file}; sleep 300"
            await accepted.ws.send(encode(CommandFrame(command_id="long", command=command)))
            async with asyncio.timeout(10):
                while not pid_file.exists() or not pid_file.read_text().strip():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            child = int(pid_file.read_text())

            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                assert await proc.wait() == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.stderr is not None
        stderr = (await proc.stderr.read()).decode()
        assert "agent stopped" in stderr and GOOD_KEY not in stderr
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
