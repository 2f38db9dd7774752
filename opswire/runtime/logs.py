"""Logging for every opswire process, configured once in the entry point.

One event a line (DESIGN §10). Structured fields go in `extra=` (server_id,
subject, consumer, ...), never a password, key or token. Two formats
(`OPSWIRE_LOG_FORMAT`):

- `text`, for people: `<time> <LEVEL> <logger>: <message> key=value ...`, a value
  with spaces, quotes or `=` quoted (logfmt), so the line still splits cleanly;
- `json`, for log pipelines: one JSON object a line (python-json-logger) with
  `time` (ISO 8601, UTC), `level`, `logger`, `message`, the extra fields and `exc_info` if any.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_BARE = re.compile(r"^[^\s\"=]+$")


def _logfmt_value(value: object) -> str:
    text = str(value)
    return text if _BARE.match(text) else json.dumps(text, ensure_ascii=False)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())
        return line


def _json_formatter() -> logging.Formatter:
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        reserved_attrs=sorted(_STANDARD - {"levelname", "name", "message"}),
        timestamp="time",  # ISO 8601, UTC
        json_default=str,
    )


def configure_logging(level: str = "INFO", fmt: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _json_formatter()
        if fmt == "json"
        else KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # FastStream logs every message at INFO; keep per-message noise for DEBUG. uvicorn's own
    # access log is replaced by the gateway's (gateway/access_log.py), which drops secrets.
    for noisy in ("faststream", "faststream.access.nats", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
