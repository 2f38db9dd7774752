"""Bounds on free-form JSON that opswire publishes, stores and forwards.

Extra metric fields, container lists and Docker data are kept as they came
(DESIGN §9), but only if they can be stored: PostgreSQL text and jsonb cannot
hold U+0000, and JSON nested deeper than any real payload makes serialisers
fail with a recursion error. A frame or message that breaks these bounds is
refused where it enters, never accepted and lost later.
"""

from __future__ import annotations

from typing import Any

import orjson

# Real agent payloads nest a handful of levels; this leaves ample room.
MAX_JSON_DEPTH = 64
# How U+0000 must appear in JSON text (it cannot appear raw): a cheap pre-check.
ESCAPED_NUL = "\\u0000"


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays/objects nest more than `limit` levels (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def has_nul(value: Any) -> bool:
    """Whether any string (key or value) holds U+0000."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def replace_nul(value: Any) -> Any:
    """A copy with every U+0000 in strings (keys too) replaced by U+FFFD; depth already bounded."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {replace_nul(k): replace_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_nul(v) for v in value]
    return value


def mentions_nul(raw: str | bytes) -> bool:
    """Whether JSON text could hold U+0000 at all (only as an escape); skips most walks."""
    return (ESCAPED_NUL in raw) if isinstance(raw, str) else (ESCAPED_NUL.encode() in raw)


class UnfitJson(ValueError):
    """Text that is not a JSON object opswire can carry and store; the message says why."""


def _brackets(raw: str | bytes) -> int:
    """Opening brackets in the text: fewer than the depth limit cannot nest too deep."""
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{")
    return raw.count(b"[") + raw.count(b"{")


def load_object(raw: str | bytes, *, allow_nul: bool = False) -> dict[str, Any]:
    """Parse `raw` as a JSON object within the bounds above, or raise UnfitJson.

    The walks over the parsed value only run when cheap checks of the text say
    they could fail, so ordinary frames and messages pay for one parse.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise UnfitJson("not valid JSON") from None
    if not isinstance(data, dict):
        raise UnfitJson("must be a JSON object")
    if _brackets(raw) > MAX_JSON_DEPTH and too_deep(data):
        raise UnfitJson(f"nested more than {MAX_JSON_DEPTH} levels deep")
    if not allow_nul and mentions_nul(raw) and has_nul(data):
        raise UnfitJson("contains a NUL character")
    return data
