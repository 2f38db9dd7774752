from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from agent.main import _FLAGS, Agent, build_parser, load_agent_settings, ssl_context
from agent.settings import AgentSettings

KEY = "k-" + "s" * 40


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPSWIRE_URL",
        "OPSWIRE_API_KEY",
        "OPSWIRE_API_KEY_FILE",
        "OPSWIRE_METRICS_INTERVAL_S",
        "OPSWIRE_ALLOW",
        "OPSWIRE_PASS_ENV",
        "OPSWIRE_INSECURE",
        "OPSWIRE_CA_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("url", "ws_url"),
    [
        ("http://gw:8000", "ws://gw:8000/api/v1/agents/ws"),
        ("https://ops.example.com/", "wss://ops.example.com/api/v1/agents/ws"),
        ("https://example.com/opswire", "wss://example.com/opswire/api/v1/agents/ws"),
        ("ws://gw:8000/api/v1/agents/ws", "ws://gw:8000/api/v1/agents/ws"),
    ],
)
def test_socket_url_is_derived_from_the_base_url(url: str, ws_url: str) -> None:
    assert AgentSettings(url=url, api_key=SecretStr(KEY)).ws_url == ws_url


def test_environment_with_flags_winning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSWIRE_URL", "http://from-env:8000")
    monkeypatch.setenv("OPSWIRE_API_KEY", KEY)
    monkeypatch.setenv("OPSWIRE_METRICS_INTERVAL_S", "2.5")
    settings = load_agent_settings(["--allow", "uptime", "--allow", "df *", "--no-commands"])
    assert (settings.url, settings.key, settings.metrics_interval_s) == (
        "http://from-env:8000",
        KEY,
        2.5,
    )
    assert settings.allow == ["uptime", "df *"] and settings.commands_enabled is False
    assert load_agent_settings(["--interval", "0.2"]).metrics_interval_s == 0.2
    assert KEY not in repr(settings) and KEY not in str(settings)


def test_key_file_beats_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPSWIRE_API_KEY", "from-env")
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    settings = load_agent_settings(["--url", "http://gw", "--api-key-file", str(key_file)])
    assert settings.key == KEY


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "http://gw"], "API key is required"),
        (["--url", "ftp://gw", "--api-key", KEY], "OPSWIRE_URL"),
        (["--url", "http://gw", "--api-key", KEY, "--interval", "0"], "OPSWIRE_METRICS_INTERVAL_S"),
        (["--url", "http://gw", "--api-key-file", "/nonexistent/key"], "cannot read"),
    ],
)
def test_bad_configuration_stops_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        load_agent_settings(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and message in err
    assert KEY not in err


def test_tls_verifies_by_default_and_insecure_does_not(tmp_path: Path) -> None:
    assert ssl_context(AgentSettings(url="http://gw", api_key=SecretStr(KEY))) is None
    strict = ssl_context(AgentSettings(url="https://gw", api_key=SecretStr(KEY)))
    assert strict is not None and strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    loose = ssl_context(AgentSettings(url="wss://gw", api_key=SecretStr(KEY), insecure=True))
    assert loose is not None and loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname


def test_ca_file_and_insecure_together_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read at validation\n")
    with pytest.raises(ValidationError, match="contradict"):
        AgentSettings(url="https://gw", api_key=SecretStr(KEY), ca_file=ca, insecure=True)


@pytest.mark.parametrize(
    ("url", "insecure", "warning"),
    [
        ("ws://10.1.2.3:8000", False, "plain text"),
        ("http://gw.example.com", False, "plain text"),
        ("http://[2001:db8::1]:8000", False, "plain text"),
        ("wss://gw.example.com", True, "verification is OFF"),
        ("https://127.0.0.1:8443", True, "verification is OFF"),
        ("ws://127.0.0.1:8000", False, None),
        ("ws://127.9.8.7:8000", False, None),
        ("http://localhost:8000", False, None),
        ("http://[::1]:8000", False, None),
        ("http://[::ffff:127.0.0.1]:8000", False, None),
        ("wss://gw.example.com", False, None),
    ],
)
def test_the_agent_warns_at_start_about_an_unprotected_connection(
    caplog: pytest.LogCaptureFixture, url: str, insecure: bool, warning: str | None
) -> None:
    caplog.set_level(logging.WARNING, logger="agent")
    Agent(AgentSettings(url=url, api_key=SecretStr(KEY), insecure=insecure))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if warning is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warning in warnings[0] and "INSECURE" in warnings[0]


def test_command_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSWIRE_PASS_ENV", '["APP_REGION"]')
    settings = load_agent_settings(["--url", "http://gw", "--api-key", KEY, "--allow", "df -h *"])
    assert (settings.pass_env, settings.allow) == (["APP_REGION"], ["df -h *"])
    flagged = load_agent_settings(["--url", "http://gw", "--api-key", KEY, "--pass-env", "TZ"])
    assert flagged.pass_env == ["TZ"]
    agent = Agent(settings)
    assert agent.runner.policy.pass_env == ("APP_REGION",)
    assert agent.runner.policy.allow == ("df -h *",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--allow", "uptime*"], "without wildcards"),
        (["--allow", "df -h; *"], "shell syntax"),
        (["--pass-env", "OPSWIRE_API_KEY"], "never passed"),
        (["--pass-env", "A=B"], "not an environment variable name"),
    ],
)
def test_bad_command_settings_stop_the_agent(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        load_agent_settings(["--url", "http://gw", "--api-key", KEY, *argv])
    assert message in capsys.readouterr().err


def test_several_gateway_urls_from_flags_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSWIRE_API_KEY", KEY)
    from_flags = load_agent_settings(["--url", "https://a.example.com", "--url", "http://b:8000"])
    assert from_flags.ws_urls == [
        "wss://a.example.com/api/v1/agents/ws",
        "ws://b:8000/api/v1/agents/ws",
    ]
    monkeypatch.setenv("OPSWIRE_URL", "https://a.example.com, https://b.example.com")
    assert load_agent_settings([]).ws_urls == [
        "wss://a.example.com/api/v1/agents/ws",
        "wss://b.example.com/api/v1/agents/ws",
    ]
    # One plain-text remote gateway among them is enough for the loud warning.
    assert from_flags.plaintext_remote


@pytest.mark.parametrize("url", ["https://a, https://a", "https://a,ftp://b", " , "])
def test_bad_gateway_url_lists_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        AgentSettings(url=url, api_key=SecretStr(KEY))


def test_every_flag_names_the_variable_that_sets_it_too() -> None:
    help_text = " ".join(build_parser().format_help().split())
    for flag, field, _, _ in _FLAGS:
        assert field in AgentSettings.model_fields, flag
        assert f"[env: OPSWIRE_{field.upper()}]" in help_text.replace("- ", "-"), flag
