"""The NATS identity settings: a wrong value is one clear line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from opswire.runtime.settings import CommonSettings, DatabaseSettings, load_settings


def _refusal(capsys: pytest.CaptureFixture[str], **values: object) -> str:
    with pytest.raises(SystemExit) as stopped:
        load_settings(CommonSettings, **values)
    assert stopped.value.code == 2
    return capsys.readouterr().err


def test_bad_inbox_prefix_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "OPSWIRE_NATS_INBOX_PREFIX" in _refusal(capsys, nats_inbox_prefix="_INBOX.*")


def test_password_without_user_and_empty_password_file_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert "needs OPSWIRE_NATS_USER" in _refusal(capsys, nats_password="x")
    empty = tmp_path / "pw"
    empty.write_text("\n")
    assert "is empty" in _refusal(capsys, nats_user="gateway", nats_password_file=empty)
    assert "cannot read" in _refusal(capsys, nats_user="gateway", nats_password_file=tmp_path / "none")


def test_identity_is_read_from_the_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    settings = CommonSettings(nats_user="gateway", nats_password_file=secret)
    assert settings.nats_secret() == "s3cret"


@pytest.mark.parametrize("variable", ["DATABASE_URL", "OPSWIRE_DATABASE_URL"])
def test_an_aliased_variable_is_named_as_the_user_set_it(
    variable: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DATABASE_URL", "OPSWIRE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "mysql://somewhere/db")
    with pytest.raises(SystemExit) as stopped:
        load_settings(DatabaseSettings, program="opswire ingest")
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "  DATABASE_URL: " in err and "postgresql://" in err
    assert "OPSWIRE_OPSWIRE" not in err
