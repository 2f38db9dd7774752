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
