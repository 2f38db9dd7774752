"""Apprise URLs: checking one, masking it for display, sending through it.

A channel URL is a secret (it holds tokens and passwords), so it is only ever
shown masked and never logged; the error text of a failed send comes from
Apprise's own log, captured for the channel's owner instead of our log.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
import weakref

import apprise

from opswire.runtime.rpc import RpcError

# Apprise logs each failure itself; its lines may name the receiver: not for our log.
logging.getLogger("apprise").propagate = False
# Apprise imports its plugins on first use: do it now, not inside a handler on the event
# loop; one of them imports the stdlib's deprecated `imghdr`, which is not our warning.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    apprise.Apprise.instantiate("json://localhost")

MAX_ERROR_CHARS = 500

# Apprise's log capture listens to its one global logger: two sends at once would each
# capture the other's lines, and one owner could read another's receiver error. So one
# send at a time per process (per event loop: tests run several).
_sending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _one_at_a_time() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _sending.get(loop)
    if lock is None:
        lock = _sending[loop] = asyncio.Lock()
    return lock


def check(url: str) -> None:
    """Refuse (422) a URL that no Apprise plugin understands; the URL is not echoed back."""
    if apprise.Apprise.instantiate(url) is None:
        raise RpcError(
            "invalid",
            "Not a notification URL Apprise understands (e.g. json://host:port/path, "
            "slack://…, discord://…, tgram://…, ntfy://…, mailto://…)",
        )


def mask(url: str) -> str:
    """`json://…:8080/hook` style: the scheme and the last few characters only."""
    scheme, _, rest = url.partition("://")
    tail = rest[-4:] if len(rest) > 12 else ""
    return f"{scheme}://…{tail}"


async def send(url: str, title: str, body: str, timeout_s: float) -> str | None:
    """Send one notification; None when it went out, else why not (for the channel owner)."""
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return "The URL is not understood by Apprise"
    async with _one_at_a_time():
        with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            try:
                sent = await asyncio.wait_for(notifier.async_notify(body=body, title=title), timeout_s)
            except TimeoutError:
                return f"No answer from the receiver within {timeout_s:g} s"
            log_text = captured.getvalue()
    if sent:
        return None
    return _last_line(log_text) or "The receiver refused the notification"


def _last_line(text: str) -> str:
    lines = [line.split(" - ", 2)[-1].strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:MAX_ERROR_CHARS] if lines else ""
