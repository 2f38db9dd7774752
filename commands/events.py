"""Publishing finished commands to `<prefix>.commands.<server_id>.results` (JetStream)."""

from __future__ import annotations

import logging

from commands.models import CommandRecord
from commands.outcome import as_command_result, as_docker_result
from opswire.contract.events import DockerResultEvent, ShellResultEvent
from opswire.contract.subjects import Subjects
from opswire.runtime.publisher import Publisher

log = logging.getLogger(__name__)

# Room for headers and protocol framing under the server's max_payload.
PAYLOAD_MARGIN = 4096


def result_event(record: CommandRecord) -> ShellResultEvent | DockerResultEvent:
    """The row's REST object with `kind` and `timestamp`, flat (DESIGN §9 'Events on NATS')."""
    if record.kind == "docker":
        return DockerResultEvent(**dict(as_docker_result(record)))
    return ShellResultEvent(**dict(as_command_result(record)))


def encode_within(event: ShellResultEvent | DockerResultEvent, max_bytes: int) -> bytes:
    """The event as JSON, cutting output (shell) or data (docker) so it fits one NATS message.

    The full result stays in the history; the event says `truncated` or drops `data`.
    """
    payload = event.model_dump_json().encode()
    if len(payload) <= max_bytes:
        return payload
    if isinstance(event, ShellResultEvent):
        output = event.output or ""
        while len(payload) > max_bytes and output:
            output = output[: len(output) // 2]
            cut = event.model_copy(update={"output": output, "truncated": True})
            payload = cut.model_dump_json().encode()
        return payload
    return event.model_copy(update={"data": None}).model_dump_json().encode()


class ResultPublisher:
    def __init__(self, out: Publisher, subjects: Subjects, max_payload: int) -> None:
        self._out = out
        self._subjects = subjects
        self._max_bytes = max(max_payload - PAYLOAD_MARGIN, 1024)

    def publish(self, record: CommandRecord) -> bool:
        """Hand the row's result to the reliable publisher (retried until stored; the
        Nats-Msg-Id makes every retry count once). The row is already stored, so a full
        buffer is logged, not raised: the caller still gets its result."""
        subject = self._subjects.command_results(str(record.server_id))
        payload = encode_within(result_event(record), self._max_bytes)
        taken = self._out.submit(subject, payload, f"{record.command_id}:{record.status}", force=True)
        if not taken:
            log.error("result event not published", extra={"command_id": record.command_id})
        return taken
