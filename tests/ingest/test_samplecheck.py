"""The cheap sample check agrees with MetricsSample on valid and hostile input (ingest.samplecheck).

The check may only say "certainly valid" where pydantic accepts, with the same values;
everything else goes to pydantic. These tests run ingest's decode and the pydantic-only
decode over many samples and assert the same outcome, and that the gateway's own
shape does take the cheap path (or the comparison would prove nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ingest.decode import DecodedSample, InvalidMessage, _check_bounds, decode_sample
from ingest.samplecheck import CheckedSample, check_sample
from opswire.contract.telemetry import MetricsSample
from tests.ingest.support import base_time, sample
from tests.ingest.test_hostile import OUT_OF_RANGE, _nested

SERVER = uuid.uuid4()
SUBJECT = f"opswire.metrics.{SERVER}"
T0 = base_time()


def _gateway_sample() -> dict[str, Any]:
    """The shape bench/ingest_catchup.py publishes: every optional field the gateway forwards."""
    return {
        **sample(SERVER, T0, cpu=12.5, memory=40, disks=(40.0, 20)),
        "network": [
            {
                "interface": "eth0",
                "bytes_sent": 1,
                "bytes_recv": 2,
                "packets_sent": 3,
                "packets_recv": 4,
                "errin": 0,
                "errout": None,
            }
        ],
        "swap_percent": 1.5,
        "uptime_seconds": 86_400,
        "temperatures": {"cpu": [{"label": "core0", "current": 40.0}]},
        "containers": [{"id": "abc", "state": "running"}],
        "processes": 212,
    }


STAMPS = [
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00+00:00",
    "2026-01-01T00:00:00.5Z",
    "2026-01-01T00:00:00.123456Z",
    "2026-01-01T00:00:00.1234567Z",
    "2026-01-01T00:00:00",
    "2026-01-01 00:00:00Z",
    "2026-01-01t00:00:00z",
    "2026-01-01T00:00:00-00:00",
    "2026-01-01T00:00:00+05:00",
    "2026-02-30T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T00:00:60Z",
    "2026-13-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    OUT_OF_RANGE,
    "9999-12-31T23:59:59Z",
    "٢٠٢٦-01-01T00:00:00Z",
    "2026-01-01",
    "1700000000",
    "",
    "now",
    (datetime.now(UTC) + timedelta(minutes=10)).isoformat(),
    (datetime.now(UTC) + timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
]
NUMBERS: list[Any] = [
    0,
    0.0,
    100,
    100.0,
    50,
    12.5,
    -0.0,
    -1,
    -1e-9,
    100.000001,
    101,
    1e308,
    True,
    False,
    None,
    "50",
    "",
    [],
    {},
    [50],
    2**63,
    1.5e-300,
]
JUNK: list[Any] = [None, True, 7, -7, "x", [], {}, [{}], [None], 1.5]
TEXTS: list[Any] = ["", "/", "x" * 255, "x" * 256, "x" * 4096, "x" * 4097, "é", 5, None, ["/"], {}]


FieldPath = tuple[str | int, ...]


def _set(obj: dict[str, Any], path: FieldPath, value: Any) -> dict[str, Any]:
    """A copy of `obj` with the value at `path` replaced (`...`: the key removed)."""
    copy: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    *parents, last = path
    node: Any = copy
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return copy


def _variants() -> Iterator[bytes]:
    base = _gateway_sample()
    yield orjson.dumps(base)
    yield orjson.dumps(sample(SERVER, T0))
    minimal = {
        k: base[k]
        for k in (
            "server_id",
            "cpu_percent",
            "memory_percent",
            "disk_usage",
            "network",
            "timestamp",
            "received_at",
        )
    }
    yield orjson.dumps(minimal)
    for key in list(base):
        yield orjson.dumps(_set(base, (key,), ...))
        for wrong in JUNK:
            yield orjson.dumps(_set(base, (key,), wrong))
    for stamp_field in ("timestamp", "received_at"):
        for stamp in STAMPS:
            yield orjson.dumps(_set(base, (stamp_field,), stamp))
    percents: list[FieldPath] = [
        ("cpu_percent",),
        ("memory_percent",),
        ("swap_percent",),
        ("disk_usage", 0, "percent"),
    ]
    counters: list[FieldPath] = (
        [("disk_usage", 1, name) for name in ("total", "used", "free")]
        + [("network", 0, name) for name in ("bytes_sent", "bytes_recv", "packets_sent", "errout")]
        + [("processes",)]
    )
    others: list[FieldPath] = [
        ("uptime_seconds",),
        ("load_average", 1),
        ("load_average",),
        ("containers",),
        ("containers", 0),
        ("temperatures",),
        ("disk_usage", 0),
        ("network", 0),
    ]
    for path in percents + counters + others:
        for number in NUMBERS:
            yield orjson.dumps(_set(base, path, number))
        yield orjson.dumps(_set(base, path, ...))
    texts: list[FieldPath] = [("disk_usage", 0, "path"), ("network", 0, "interface"), ("server_id",)]
    for path in texts:
        for text in TEXTS:
            yield orjson.dumps(_set(base, path, text))
    for load in ([0.5, 0.4], [0.5, 0.4, 0.3, 0.2], [0, 0, 0], [-1, 0, 0], None):
        yield orjson.dumps(_set(base, ("load_average",), load))
    yield orjson.dumps(_set(base, ("server_id",), str(uuid.uuid4())))  # differs from the subject
    for odd in ("model_config", "__class__", "__dict__", "__pydantic_extra__", "_private", ""):
        yield orjson.dumps({**base, odd: 1})  # extra keys that are names inside a model
    yield orjson.dumps(_set(base, ("disk_usage",), []))
    yield orjson.dumps(_set(base, ("processes",), [{"pid": 1}, 2]))
    # Text orjson refuses or reads differently from pydantic's parser.
    text = orjson.dumps(base)
    yield text.replace(b'"cpu_percent":12.5', b'"cpu_percent":NaN')
    yield text.replace(b'"cpu_percent":12.5', b'"cpu_percent":1e400')
    yield text.replace(b'"cpu_percent":12.5', b'"cpu_percent":50,"cpu_percent":150')
    yield text.replace(b'"cpu_percent":12.5', b'"cpu_percent":150,"cpu_percent":50')
    yield text.replace(b'"total":100', b'"total":' + str(2**70).encode() + b"0")
    yield text.replace(b'"processes":212', b'"processes":' + str(2**70).encode())
    yield text.replace(b'"/d0"', b'"\\ud800"')
    yield text.replace(b'"/d0"', b'"\xff"')
    yield text.replace(b'"/d0"', b'"\\u0000"')
    yield text.replace(b'"core0"', _nested(1000))
    yield text + b" "
    yield text + b"x"
    yield text[:-1]
    yield from (b"", b"null", b"[]", b"[{}]", b'"x"', b"{}", b"12")


def _pydantic_decode(raw: bytes) -> tuple[Any, ...] | None:
    """What ingest stored before the cheap check: pydantic's verdict alone (None: refused)."""
    try:
        _check_bounds(raw)
        model = MetricsSample.model_validate_json(raw)
    except (InvalidMessage, ValidationError):
        return None
    if model.server_id != str(SERVER):
        return None
    return (SERVER, model.timestamp, model.received_at, model.cpu_percent, model.memory_percent, raw.decode())


def _decode(raw: bytes) -> DecodedSample | None:
    try:
        return decode_sample(SUBJECT, raw)
    except InvalidMessage:
        return None


def test_the_cheap_check_and_pydantic_agree_on_every_variant() -> None:
    variants = list(_variants())
    cheap = 0
    for raw in variants:
        decoded, expected = _decode(raw), _pydantic_decode(raw)
        if expected is None or decoded is None:
            assert decoded is expected is None, raw
            continue
        assert decoded.row == expected, raw
        assert all(type(a) is type(b) for a, b in zip(decoded.row, expected, strict=True)), raw
        if isinstance(decoded.sample, CheckedSample):
            cheap += 1
            model = MetricsSample.model_validate_json(raw)
            assert [d.percent for d in decoded.sample.disk_usage] == [d.percent for d in model.disk_usage], (
                raw
            )
    assert len(variants) > 500
    # Most valid variants are ones the cheap check is sure of; else it would prove nothing.
    assert cheap > 150


def test_the_gateway_shape_takes_the_cheap_path() -> None:
    decoded = decode_sample(SUBJECT, orjson.dumps(_gateway_sample()))
    assert isinstance(decoded.sample, CheckedSample)
    assert decoded.sample.cpu_percent == 12.5
    assert [d.percent for d in decoded.sample.disk_usage] == [40.0, 20.0]
    assert decoded.row[1] == T0


@pytest.mark.parametrize("stamp", ["2026-01-01T00:00:00+05:00", OUT_OF_RANGE, "1700000000"])
def test_other_timestamp_formats_are_left_to_pydantic(stamp: str) -> None:
    assert check_sample({**_gateway_sample(), "timestamp": stamp}) is None


def test_a_sample_from_the_future_is_refused() -> None:
    future = (datetime.now(UTC) + timedelta(minutes=6)).isoformat().replace("+00:00", "Z")
    assert check_sample({**_gateway_sample(), "timestamp": future}) is None
    with pytest.raises(InvalidMessage, match="future"):
        decode_sample(SUBJECT, orjson.dumps({**_gateway_sample(), "timestamp": future}))
