"""`opswire up` refuses options it cannot honour before starting anything."""

import socket
from pathlib import Path

import pytest

from opswire.cli import build_parser
from opswire.launcher.up import run_up


@pytest.mark.parametrize("port", ["abc", "-1", "65536"])
def test_bad_port_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["up", "--port", port])
    assert stopped.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_port_in_use_is_refused_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run_up("127.0.0.1", port, str(tmp_path / "data"), demo=False) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_unusable_data_dir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert run_up("127.0.0.1", 0, str(blocker / "data"), demo=False) == 2
    assert "cannot use" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from opswire import __version__
    from opswire.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"opswire {__version__}"


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([*argv, "--help"])
    assert stopped.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrapped


def test_up_help_explains_every_option_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(["up"], capsys)
    expected = {
        "--host HOST": "(default: 127.0.0.1)",
        "--port PORT": "(default: 8000)",
        "--data-dir DATA_DIR": "(default: .opswire)",
        "--demo": "(default: False)",
    }
    for option, default in expected.items():
        after = text.split(f"{option} ", 2)[-1]  # the option's own line, after the usage
        help_text = after.split(" --", 1)[0]
        assert default in help_text, (option, help_text)
        assert len(help_text.removesuffix(default).split()) >= 3, (option, help_text)  # a real help text


@pytest.mark.parametrize("service", ["gateway", "ingest", "commands", "auth"])
def test_service_help_lists_the_environment_it_reads(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from opswire.cli import env_names, settings_class

    text = _help([service], capsys)
    cls = settings_class(service)
    assert cls.__module__ == f"{service}.settings"
    assert len(cls.model_fields) >= 10
    for field in cls.model_fields:
        for name in env_names(cls, field):
            assert name in text, (service, field, name)
    # The names the services are actually configured with, whatever the derivation says.
    common = {
        "NATS_URL",
        "OPSWIRE_NATS_URL",
        "OPSWIRE_SUBJECT_PREFIX",
        "OPSWIRE_NATS_USER",
        "OPSWIRE_LOG_LEVEL",
    }
    specific = {
        "gateway": {"OPSWIRE_JWT_SECRET", "OPSWIRE_PORT", "OPSWIRE_TLS_CERT", "OPSWIRE_CORS_ORIGINS"},
        "ingest": {"DATABASE_URL", "OPSWIRE_RETENTION_DAYS"},
        "commands": {"DATABASE_URL"},
        "auth": {"DATABASE_URL", "OPSWIRE_JWT_SECRET"},
    }[service]
    assert all(name in text for name in common | specific), text
    if service in ("gateway", "auth"):
        assert "[default: required]" in text.split("OPSWIRE_JWT_SECRET", 1)[1]
    assert "[default: nats://127.0.0.1:4222]" in text


def test_env_names_follow_the_settings_loader() -> None:
    """The same names opswire.runtime.settings uses in its error messages (the first of each list)."""
    from opswire.cli import SERVICES, env_names, settings_class
    from opswire.runtime.settings import _env_name

    for service in SERVICES:
        cls = settings_class(service)
        for field in cls.model_fields:
            assert env_names(cls, field)[0] == _env_name(cls, field)
