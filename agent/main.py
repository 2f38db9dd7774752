"""`opswire agent`: wires collector, tailer, runner, Docker actions and the connection.

`main(argv)` is the CLI entry point; `Agent(settings).run()` runs an agent inside
an existing event loop (tests, `opswire up --demo`) until it is cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import ssl
import time
from typing import Any

from agent.buffer import Outbox
from agent.collector import MetricsCollector
from agent.connection import AgentConnection, Backoff, ConnectionOptions
from agent.docker_actions import DockerActions
from agent.runner import CommandPolicy, CommandRunner, fit_output
from agent.settings import AgentSettings
from agent.tailer import LogTailer
from opswire.contract.frames import CommandFrame, CommandResponse, DockerCommandFrame
from opswire.runtime.logs import configure_logging
from opswire.runtime.settings import load_settings

log = logging.getLogger(__name__)
AGENT_FAILURE_EXIT_CODE = 127


class Agent:
    def __init__(self, settings: AgentSettings, backoff: Backoff | None = None) -> None:
        self.settings = s = settings
        self.outbox = Outbox(
            metrics_capacity=math.ceil(s.buffer_seconds / s.metrics_interval_s),
            logs_capacity=s.log_buffer_lines,
            resend_window_s=s.resend_window_s,
        )
        self.runner = CommandRunner(
            CommandPolicy(
                enabled=s.commands_enabled,
                allow=tuple(s.allow),
                default_timeout_s=s.command_timeout_s,
                max_output_bytes=s.max_output_bytes,
                pass_env=tuple(s.pass_env),
            ),
            s.max_concurrent_commands,
        )
        warn_about_transport(s)
        self.docker = DockerActions(s.docker_enabled, s.max_frame_bytes)
        options = ConnectionOptions(
            ws_urls=tuple(s.ws_urls),
            api_key=s.key,
            ssl_context=ssl_context(s),
            ping_interval_s=s.ping_interval_s,
            ping_timeout_s=s.ping_timeout_s,
            open_timeout_s=s.open_timeout_s,
            close_timeout_s=s.close_timeout_s,
            max_frame_bytes=s.max_frame_bytes,
            stable_after_s=s.stable_after_s,
            rejected_retry_s=s.rejected_retry_s,
            keepalive_s=s.keepalive_s,
        )
        self.connection = AgentConnection(
            options,
            self.outbox,
            self.dispatch,
            backoff or Backoff(s.backoff_initial_s, s.backoff_max_s),
        )
        self._work: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Run until cancelled; running commands are killed (whole group) on the way out."""
        s = self.settings
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._metrics_loop())
                group.create_task(self.connection.run())
                if s.log_files:
                    tailer = LogTailer(
                        s.log_files,
                        self.outbox.put_log,
                        rate_per_s=s.log_rate_per_s,
                        burst=s.log_burst,
                        poll_s=s.log_poll_s,
                    )
                    group.create_task(tailer.run())
        finally:
            for task in self._work:
                task.cancel()
            await asyncio.gather(*self._work, return_exceptions=True)

    def dispatch(self, frame: CommandFrame | DockerCommandFrame) -> None:
        """Each command runs in its own task so none blocks metrics or another command."""
        task = asyncio.create_task(self._answer(frame))
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _answer(self, frame: CommandFrame | DockerCommandFrame) -> None:
        if isinstance(frame, DockerCommandFrame):
            self.outbox.put_reply(await self.docker.handle(frame))
            return
        try:
            response = await self.runner.run(frame)
        except OSError as exc:  # fork failed, no /bin/sh, too many open files
            log.error("command could not start", extra={"command_id": frame.command_id, "error": str(exc)})
            response = CommandResponse(
                type="command_response",
                command_id=frame.command_id,
                output=f"agent could not run the command: {exc}",
                exit_code=AGENT_FAILURE_EXIT_CODE,
                duration_ms=0,
            )
        self.outbox.put_reply(fit_output(response, self.settings.max_frame_bytes))

    async def _metrics_loop(self) -> None:
        interval = self.settings.metrics_interval_s
        collector = await asyncio.to_thread(MetricsCollector)
        next_at = time.monotonic() + min(interval, 1.0)  # a first sample soon after start
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            try:
                self.outbox.put_metrics(await asyncio.to_thread(collector.collect))
            except Exception:  # one bad reading must not end the metrics stream
                log.exception("metrics collection failed")
            # Fixed schedule, no drift; after a stall, skip ahead instead of bursting.
            next_at = max(next_at + interval, time.monotonic())


def warn_about_transport(settings: AgentSettings) -> None:
    """Say it loudly at start when the API key and commands can be read or changed on the way."""
    if settings.plaintext_remote:
        log.warning(
            "INSECURE: the gateway URL is plain text (ws://) to another machine: the API key, "
            "every command and its output can be read and changed on the network. Use https:// "
            "or wss://.",
            extra={"urls": ",".join(settings.ws_urls)},
        )
    if settings.insecure and _any_tls(settings):
        log.warning(
            "INSECURE: TLS certificate verification is OFF (--insecure): anyone on the network "
            "path can impersonate the gateway and send this agent commands. Use --ca-file instead."
        )


def _any_tls(settings: AgentSettings) -> bool:
    return any(url.startswith("wss://") for url in settings.ws_urls)


def ssl_context(settings: AgentSettings) -> ssl.SSLContext | None:
    """The TLS context for the wss:// gateways (None when all are plain ws://)."""
    if not _any_tls(settings):
        return None
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# flag, settings field, type or argparse action, help. Every flag has an OPSWIRE_<FIELD> twin.
_FLAGS: list[tuple[str, str, Any, str]] = [
    (
        "--url",
        "url",
        "append",
        "gateway base URL, e.g. https://ops.example.com (repeatable: the agent fails over "
        "between gateways, round-robin)",
    ),
    ("--api-key", "api_key", str, "visible in ps: prefer OPSWIRE_API_KEY or --api-key-file"),
    ("--api-key-file", "api_key_file", str, "file holding the API key"),
    ("--interval", "metrics_interval_s", float, "seconds between samples (5)"),
    ("--no-commands", "commands_enabled", "store_false", "refuse remote shell commands"),
    (
        "--allow",
        "allow",
        "append",
        "run only commands matching this pattern, without a shell (repeatable): program "
        "exactly, then one fnmatch pattern per argument; a last lone * allows any further "
        "arguments ('df -h *'). Shell syntax (; & | $ ` < > newline) is refused",
    ),
    (
        "--pass-env",
        "pass_env",
        "append",
        "give commands this variable of the agent's environment too (repeatable); "
        "otherwise they get only PATH, HOME, LANG, LC_ALL",
    ),
    ("--command-timeout", "command_timeout_s", float, "timeout of a command sent without one (60)"),
    ("--max-output-bytes", "max_output_bytes", int, "command output cap (1 MiB)"),
    ("--no-docker", "docker_enabled", "store_false", "refuse Docker actions"),
    ("--log-file", "log_files", "append", "tail this file (repeatable)"),
    ("--log-rate", "log_rate_per_s", float, "log lines per second sent at most (50)"),
    ("--log-burst", "log_burst", int, "log lines allowed in one burst (200)"),
    ("--buffer-seconds", "buffer_seconds", float, "seconds of samples kept while offline (3600)"),
    ("--insecure", "insecure", "store_true", "do not verify the gateway's TLS certificate"),
    ("--ca-file", "ca_file", str, "CA bundle to verify the gateway's certificate with"),
    ("--backoff-initial", "backoff_initial_s", float, "first reconnect delay in s (1)"),
    ("--backoff-max", "backoff_max_s", float, "longest reconnect delay in s (60)"),
    ("--rejected-retry", "rejected_retry_s", float, "retry delay after a rejected key in s (60)"),
    ("--log-level", "log_level", str, "DEBUG, INFO (default), WARNING, ERROR"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opswire agent",
        argument_default=argparse.SUPPRESS,  # unset flags leave the environment's value
        description="Run an opswire agent. Every option can also be set as OPSWIRE_<NAME> "
        "(OPSWIRE_URL, OPSWIRE_API_KEY, OPSWIRE_METRICS_INTERVAL_S, ...); flags win.",
    )
    for flag, field, kind, text in _FLAGS:
        # Each option names the variable that sets it too (the settings' env_prefix + field).
        text = f"{text} [env: OPSWIRE_{field.upper()}]"
        if isinstance(kind, str):
            parser.add_argument(flag, dest=field, action=kind, help=text)
        else:
            parser.add_argument(flag, dest=field, type=kind, help=text)
    return parser


def load_agent_settings(argv: list[str]) -> AgentSettings:
    overrides: dict[str, Any] = vars(build_parser().parse_args(argv))
    if "url" in overrides:
        overrides["url"] = ",".join(overrides["url"])  # --url a --url b: the env's "a,b"
    if "api_key_file" in overrides and "api_key" not in overrides:
        overrides["api_key"] = None  # an explicit key file beats OPSWIRE_API_KEY
    return load_settings(AgentSettings, "opswire agent", **overrides)


async def run_until_signalled(settings: AgentSettings) -> None:
    task = asyncio.create_task(Agent(settings).run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("agent stopped")


def main(argv: list[str]) -> None:
    settings = load_agent_settings(argv)
    configure_logging(settings.log_level)
    if "--api-key" in argv or any(arg.startswith("--api-key=") for arg in argv):
        log.warning("--api-key is visible in ps; prefer OPSWIRE_API_KEY or --api-key-file")
    log.info("agent starting", extra={"urls": ",".join(settings.ws_urls)})
    asyncio.run(run_until_signalled(settings))
