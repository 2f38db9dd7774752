"""Publishing finished commands to `<prefix>.commands.<server_id>.results` (JetStream)."""

from __future__ import annotations

import asyncio
import logging

from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from commands.models import CommandRecord
from commands.outcome import as_command_result, as_docker_result
from opswire.contract.events import CommandResultEvent
from opswire.contract.resources import CommandResult
from opswire.subjects import Subjects

log = logging.getLogger(__name__)

PUBLISH_ATTEMPTS = 3
PUBLISH_TIMEOUT_S = 2.0
# Room for headers and protocol framing under the server's max_payload.
PAYLOAD_MARGIN = 4096


def result_event(record: CommandRecord) -> CommandResultEvent:
    if record.kind == "docker":
        return CommandResultEvent(
            kind="docker", server_id=record.server_id, result=as_docker_result(record)
        )
    return CommandResultEvent(
        kind="shell", server_id=record.server_id, result=as_command_result(record)
    )


def encode_within(event: CommandResultEvent, max_bytes: int) -> bytes:
    """The event as JSON, cutting output (shell) or data (docker) so it fits one NATS message.

    The full result stays in the history; the event says `truncated` or drops `data`.
    """
    payload = event.model_dump_json().encode()
    result = event.result
    if len(payload) <= max_bytes:
        return payload
    if isinstance(result, CommandResult):
        output = result.output or ""
        while len(payload) > max_bytes and output:
            output = output[: len(output) // 2]
            cut = result.model_copy(update={"output": output, "truncated": True})
            payload = event.model_copy(update={"result": cut}).model_dump_json().encode()
        return payload
    cut_docker = result.model_copy(update={"data": None})
    return event.model_copy(update={"result": cut_docker}).model_dump_json().encode()


class ResultPublisher:
    def __init__(self, js: JetStreamContext, subjects: Subjects, max_payload: int) -> None:
        self._js = js
        self._subjects = subjects
        self._max_bytes = max(max_payload - PAYLOAD_MARGIN, 1024)

    async def publish(self, record: CommandRecord) -> bool:
        """Publish the row's result; the Nats-Msg-Id makes a retried publish count once.

        The row is already stored, so a publish that keeps failing is logged, not raised:
        the caller still gets its result and the history stays right.
        """
        subject = self._subjects.command_results(str(record.server_id))
        payload = encode_within(result_event(record), self._max_bytes)
        headers = {"Nats-Msg-Id": f"{record.command_id}:{record.status}"}
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                await self._js.publish(subject, payload, timeout=PUBLISH_TIMEOUT_S, headers=headers)
                return True
            except (NatsError, TimeoutError) as exc:
                log.warning(
                    "result event publish failed",
                    extra={"command_id": record.command_id, "attempt": attempt, "error": repr(exc)},
                )
                if attempt < PUBLISH_ATTEMPTS:
                    await asyncio.sleep(0.2 * attempt)  # back off before retrying
        log.error(
            "result event not published",
            extra={"command_id": record.command_id, "subject": subject},
        )
        return False
