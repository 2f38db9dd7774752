"""The supervisor of `opswire up` survives any output: a 200 KiB line does not stop it supervising."""

from __future__ import annotations

import signal
import sys

import pytest

from opswire.launcher import supervisor as supervisor_module
from opswire.launcher.supervisor import MAX_LINE_CHARS, Child, Supervisor
from tests.helpers.ws import eventually

LONG = 200 * 1024

CHILD = f"""
import sys, time
print("before", flush=True)
sys.stdout.write("x" * {LONG} + "\\n")
sys.stdout.write("é" * {LONG // 4} + "\\n")  # multi-byte characters split across reads
sys.stdout.write("partial")
sys.stdout.flush()
time.sleep(0.2)
print(" end", flush=True)
print("after", flush=True)
while True:
    time.sleep(1)
"""


def _lines(out: str) -> list[str]:
    prefix = "[talker  ] "
    return [line.removeprefix(prefix) for line in out.splitlines() if line.startswith(prefix)]


async def test_a_huge_line_leaves_the_child_supervised(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor_module, "STOP_TIMEOUT_S", 10.0)
    sup = Supervisor()
    child = Child("talker", [sys.executable, "-c", CHILD], {})
    sup.add(child)
    await sup.start()
    seen: list[str] = []

    def printed(line: str) -> bool:
        seen.extend(_lines(capsys.readouterr().out))
        return line in seen

    try:
        await eventually(lambda: printed("after"), timeout_s=30)
        assert child._task is not None and not child._task.done()
        assert child.process is not None and child.process.returncode is None

        # The long lines came through whole, in pieces, nothing lost or garbled.
        start = seen.index("before") + 1
        pieces_x = LONG // MAX_LINE_CHARS + (LONG % MAX_LINE_CHARS > 0)
        x_line = seen[start : start + pieces_x]
        assert all(len(p.removeprefix("… ")) <= MAX_LINE_CHARS for p in x_line)
        assert x_line[0] == "x" * MAX_LINE_CHARS
        assert all(p.startswith("… ") for p in x_line[1:])
        assert "".join(p.removeprefix("… ") for p in x_line) == "x" * LONG
        e_start = start + pieces_x
        e_line = [p.removeprefix("… ") for p in seen[e_start:] if set(p.removeprefix("… ")) == {"é"}]
        assert "".join(e_line) == "é" * (LONG // 4)
        assert "partial end" in seen
        assert "\ufffd" not in "".join(seen)

        # Still supervised: killed, it is restarted.
        first = child.process
        first.send_signal(signal.SIGKILL)
        await eventually(lambda: child.restarts == 1 and child.process is not first, timeout_s=60)
        await eventually(lambda: printed("after") and seen.count("after") == 2, timeout_s=60)
    finally:
        await sup.stop()

    # Stopped cleanly on shutdown: SIGTERM, the keeper task ends without an error.
    assert child.process is not None and child.process.returncode == -signal.SIGTERM
    assert child._task is not None and child._task.done() and child._task.exception() is None


async def test_output_without_a_newline_at_exit_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    sup = Supervisor()
    child = Child("talker", [sys.executable, "-c", "import sys; sys.stdout.write('last words')"], {})
    sup.add(child)
    await sup.start()
    try:
        await eventually(lambda: child.restarts >= 1, timeout_s=30)
    finally:
        await sup.stop()
    assert "last words" in _lines(capsys.readouterr().out)
