"""Push consumers may only deliver to their creator's own inbox.

Any identity that may create a consumer on a stream chooses where its messages are
pushed, and nats-server does not check that subject against the creator's publish
permissions. A `subscriber` could so push stored messages onto subjects it may not
publish on: an agent's control subject, an RPC method, another stream's subjects.
Every internal handler already ignores such deliveries (`nats.from_stream`); the
warden closes the door itself: the owner of a stream deletes, within seconds, every
push consumer whose deliver subject is not under the `subscriber` inbox prefix.
opswire's own consumers are pull consumers and have no deliver subject.
"""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext

from opswire.contract.subjects import Subjects
from opswire.runtime.permissions import OWNED_STREAMS, PUBLIC_STREAMS, Role, inbox_prefix
from opswire.runtime.tasks import LoopTask

log = logging.getLogger(__name__)

ALLOWED_DELIVERY = inbox_prefix("subscriber") + "."
LIST_PAGE = 256  # nats-server's page size for consumer lists


def misdirected(deliver_subject: str | None) -> bool:
    return (
        deliver_subject is not None
        and deliver_subject != ""
        and not deliver_subject.startswith(ALLOWED_DELIVERY)
    )


def guarded_streams(subjects: Subjects, role: Role) -> list[str]:
    """The public streams `role` owns (the only ones others may create consumers on)."""
    return [str(getattr(subjects, a)) for a in OWNED_STREAMS.get(role, ()) if a in PUBLIC_STREAMS]


async def remove_misdirected(js: JetStreamContext, streams: list[str]) -> list[str]:
    """Delete the push consumers of `streams` aimed anywhere but a subscriber's inbox."""
    removed = []
    for stream in streams:
        offset = 0
        while page := await js.consumers_info(stream, offset=offset or None):
            for info in page:
                if misdirected(info.config.deliver_subject):
                    await js.delete_consumer(stream, str(info.name))
                    removed.append(f"{stream}/{info.name}")
                    log.warning(
                        "deleted a push consumer aimed at an internal subject",
                        extra={
                            "stream": stream,
                            "consumer": info.name,
                            "deliver_subject": info.config.deliver_subject,
                        },
                    )
            if len(page) < LIST_PAGE:
                break
            offset += len(page)
    return removed


class ConsumerWarden(LoopTask):
    def __init__(self, js: JetStreamContext, subjects: Subjects, role: Role, interval_s: float = 1.0) -> None:
        super().__init__(self._watch, name=f"warden-{role}")
        self._js = js
        self._streams = guarded_streams(subjects, role)
        self._interval_s = interval_s

    async def _watch(self) -> None:
        failing = False
        while True:
            try:
                await remove_misdirected(self._js, self._streams)
                failing = False
            except Exception as exc:
                if not failing:  # NATS away or a stream missing: the keeper deals with it
                    log.warning("cannot check consumers", extra={"error": repr(exc)})
                failing = True
            await asyncio.sleep(self._interval_s)
