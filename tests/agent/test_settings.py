from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from pydantic import SecretStr

from agent.main import load_agent_settings, ssl_context
from agent.settings import AgentSettings

KEY = "k-" + "s" * 40


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPSWIRE_URL",
        "OPSWIRE_API_KEY",
        "OPSWIRE_API_KEY_FILE",
        "OPSWIRE_METRICS_INTERVAL_S",
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


def test_tls_verifies_by_default_and_insecure_warns(caplog: pytest.LogCaptureFixture) -> None:
    assert ssl_context(AgentSettings(url="http://gw", api_key=SecretStr(KEY))) is None
    strict = ssl_context(AgentSettings(url="https://gw", api_key=SecretStr(KEY)))
    assert strict is not None and strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    caplog.set_level(logging.WARNING, logger="agent")
    loose = ssl_context(AgentSettings(url="wss://gw", api_key=SecretStr(KEY), insecure=True))
    assert loose is not None and loose.verify_mode == ssl.CERT_NONE
    assert "verification is OFF" in caplog.text
