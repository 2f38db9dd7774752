"""OPSWIRE_LOG_FORMAT: one event a line as JSON or as quoted key=value text; the REST access
log has method, path, status, duration and client, and never a query string or a header."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from gateway.app import create_app
from gateway.settings import GatewaySettings
from opswire.runtime.logs import configure_logging
from opswire.runtime.settings import CommonSettings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _log_one(fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    configure_logging("INFO", fmt)  # type: ignore[arg-type]
    logging.getLogger("opswire.test").info(
        "stored %d rows", 3, extra={"consumer": "ingest-metrics", "reason": 'a "quoted" value=x'}
    )
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    return lines[0]


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_structured_fields(capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads(_log_one("json", capsys))
    assert record["message"] == "stored 3 rows"
    assert record["level"] == "INFO" and record["logger"] == "opswire.test"
    assert record["consumer"] == "ingest-metrics" and record["reason"] == 'a "quoted" value=x'
    assert record["time"].endswith("+00:00")


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_quote_values_that_would_not_split(capsys: pytest.CaptureFixture[str]) -> None:
    line = _log_one("text", capsys)
    expected = ' INFO opswire.test: stored 3 rows consumer=ingest-metrics reason="a \\"quoted\\" value=x"'
    assert line.endswith(expected)


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValidationError, match="log_format"):
        CommonSettings(log_format="xml")  # type: ignore[arg-type]


async def test_access_log_has_no_query_string_and_no_header(caplog: pytest.LogCaptureFixture) -> None:
    token = secrets.token_urlsafe(24)
    app = create_app(GatewaySettings.model_validate({"jwt_secret": secrets.token_urlsafe(48)}))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4711))
    with caplog.at_level(logging.INFO, logger="opswire.access"):
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            assert (
                await http.get(f"/health?token={token}", headers={"authorization": f"Bearer {token}"})
            ).status_code == 200
            assert (await http.get("/nowhere", headers={"x-api-key": token})).status_code == 404
    records = [r for r in caplog.records if r.name == "opswire.access"]
    assert [(r.method, r.path, r.status) for r in records] == [  # type: ignore[attr-defined]
        ("GET", "/health", 200),
        ("GET", "/nowhere", 404),
    ]
    assert all(r.client == "203.0.113.9:4711" and r.duration_ms >= 0 for r in records)  # type: ignore[attr-defined]
    assert token not in caplog.text
    assert all(token not in str(vars(r)) for r in records)
