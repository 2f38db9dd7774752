"""Allow-listed commands run without a shell; every command gets a minimal environment.

Real processes throughout: a refused command is proven not to have run by the
marker file its injected part would have created.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.runner import (
    NOT_FOUND_EXIT_CODE,
    REFUSED_EXIT_CODE,
    AllowPattern,
    CommandPolicy,
    CommandRunner,
    PatternError,
)
from opswire.contract.frames import CommandFrame, CommandResponse

ALLOW = ("uptime *", "df -h *", "echo *", "true")


async def run(command: str, **policy: object) -> CommandResponse:
    runner = CommandRunner(CommandPolicy(**policy))  # type: ignore[arg-type]
    return await runner.run(CommandFrame(command_id="c-1", command=command, timeout_s=10))


# Each would pass the old whole-line fnmatch of ALLOW and touch the marker through a shell.
BYPASSES = [
    "uptime; touch {m}",
    "uptime && touch {m}",
    "uptime -x || touch {m}",
    "uptime & touch {m}",
    "uptime $(touch {m})",
    "uptime ${{x:=$(touch {m})}}",
    "uptime `touch {m}`",
    "uptime\ntouch {m}",
    "uptime\rtouch {m}",  # not a separator for sh, but it hides text in a terminal or log
    "uptime\r\ntouch {m}",
    "df -h | touch {m}",
    "df -h | true; touch {m}",
    "uptime > {m}",
    "uptime >> {m}",
    "df -h 2>{m}",
    "echo 'quoted; still refused' ; touch {m}",
    'echo "$(touch {m})"',
    "true\0; touch {m}",
]


@pytest.mark.parametrize("template", BYPASSES)
async def test_shell_syntax_is_refused_and_nothing_runs(tmp_path: Path, template: str) -> None:
    marker = tmp_path / "ran"
    command = template.format(m=marker)
    result = await run(command, allow=ALLOW)
    assert result.exit_code == REFUSED_EXIT_CODE
    assert "shell syntax" in result.output and "without a shell" in result.output
    assert not marker.exists(), "the injected part ran"


@pytest.mark.parametrize("template", [t for t in BYPASSES if "\0" not in t and "\rt" not in t])
async def test_the_same_strings_do_run_in_full_access_shell_mode(tmp_path: Path, template: str) -> None:
    # Proves the marker above would have appeared had the string reached a shell.
    marker = tmp_path / "ran"
    await run(template.format(m=marker))
    assert marker.exists()


async def test_input_redirection_and_unbalanced_quotes_are_refused() -> None:
    redirected = await run("uptime < /etc/passwd", allow=ALLOW)
    assert (redirected.exit_code, "'<'" in redirected.output) == (REFUSED_EXIT_CODE, True)
    unbalanced = await run("echo 'no end", allow=ALLOW)
    assert unbalanced.exit_code == REFUSED_EXIT_CODE
    assert "cannot be split into arguments" in unbalanced.output
    trailing = await run("echo x\\", allow=ALLOW)
    assert trailing.exit_code == REFUSED_EXIT_CODE


async def test_an_allowed_command_runs_with_its_arguments_and_no_shell() -> None:
    result = await run("echo hello 'two  words' *", allow=ALLOW)
    # No shell: the quotes were split by shlex and `*` reached echo unexpanded.
    assert (result.exit_code, result.output) == (0, "hello two  words *\n")
    assert (await run("df -h /", allow=ALLOW)).exit_code == 0
    assert (await run("df -h", allow=ALLOW)).exit_code == 0


@pytest.mark.parametrize(
    "command",
    ["df /", "df -x -h", "true now", "/bin/true", "dfx -h", "uptimes", "rm -rf /tmp/none", "   "],
)
async def test_a_command_or_argument_outside_the_patterns_is_refused(command: str) -> None:
    result = await run(command, allow=ALLOW)
    assert result.exit_code == REFUSED_EXIT_CODE
    assert "command refused" in result.output


async def test_an_allowed_program_that_is_not_installed_answers_127() -> None:
    result = await run("no-such-program-opswire", allow=("no-such-program-opswire",))
    assert result.exit_code == NOT_FOUND_EXIT_CODE
    assert "No such file" in result.output


async def test_an_allowed_command_still_times_out_and_is_killed() -> None:
    runner = CommandRunner(CommandPolicy(allow=("sleep *",)))
    result = await runner.run(CommandFrame(command_id="c-2", command="sleep 30", timeout_s=1))
    assert (result.timed_out, result.exit_code) == (True, None)
    assert result.duration_ms < 5000


@pytest.mark.parametrize(
    ("pattern", "argv", "allowed"),
    [
        ("uptime", ["uptime"], True),
        ("uptime", ["uptime", "-p"], False),
        ("df -h *", ["df", "-h"], True),
        ("df -h *", ["df", "-h", "/", "/home"], True),
        ("df -h *", ["df", "/"], False),
        ("systemctl status *.service", ["systemctl", "status", "nginx.service"], True),
        ("systemctl status *.service", ["systemctl", "status", "nginx"], False),
        ("systemctl status *.service", ["systemctl", "status", "a.service", "b.service"], False),
        ("tail -n ? *", ["tail", "-n", "5", "/var/log/syslog"], True),
        ("tail -n ? *", ["tail", "-n", "50", "/var/log/syslog"], False),
        ("grep * /var/log/syslog", ["grep", "error", "/var/log/syslog"], True),
        ("grep * /var/log/syslog", ["grep", "error", "/etc/shadow"], False),
        ("grep 'two words' *", ["grep", "two words", "f"], True),
        ("grep 'two words' *", ["grep", "two", "words"], False),
        ("DF -h", ["df", "-h"], False),
    ],
)
def test_pattern_syntax(pattern: str, argv: list[str], allowed: bool) -> None:
    assert AllowPattern.parse(pattern).matches(argv) is allowed


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("uptime*", "without wildcards"),
        ("*", "without wildcards"),
        ("", "empty pattern"),
        ("df -h; *", "shell syntax"),
        ("echo 'x", "No closing quotation"),
    ],
)
def test_unusable_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        CommandPolicy(allow=(pattern,))


SECRETS = {
    "DATABASE_URL": "postgresql://u:db-secret@h/db",
    "NATS_URL": "nats://u:nats-secret@h:4222",
    "OPSWIRE_API_KEY": "api-key-secret",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "GOOGLE_APPLICATION_CREDENTIALS": "/secret/gcp.json",
}


@pytest.mark.parametrize("allow", [("env",), ()], ids=["exec", "shell"])
async def test_commands_get_a_minimal_environment(
    monkeypatch: pytest.MonkeyPatch, allow: tuple[str, ...]
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APP_REGION", "passed-through")
    monkeypatch.setenv("LANG", "C.UTF-8")
    result = await run("env", allow=allow, pass_env=("APP_REGION", "NOT_SET_ANYWHERE"))
    assert result.exit_code == 0
    names = {line.split("=", 1)[0] for line in result.output.splitlines() if "=" in line}
    for name, value in SECRETS.items():
        assert name not in names and value not in result.output
    assert "APP_REGION=passed-through" in result.output.splitlines()
    assert "LANG=C.UTF-8" in result.output.splitlines()
    assert "PATH" in names
    # The shell adds a few of its own (PWD, SHLVL, _); nothing else of the agent's.
    assert names - {"PATH", "HOME", "LANG", "LC_ALL", "APP_REGION", "PWD", "SHLVL", "_"} == set()
