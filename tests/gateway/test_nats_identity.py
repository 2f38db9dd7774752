"""The gateway connects to NATS only as itself: refused credentials stop it at once, in one line."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.backends import SecuredNats, role_env


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[SecuredNats]:
    server = SecuredNats(tmp_path / "nats")  # ours even when NATS_URL points elsewhere
    server.start()
    yield server
    server.stop()


async def test_refused_credentials_stop_the_gateway_with_one_clear_line(secured: SecuredNats) -> None:
    env = dict(os.environ) | role_env(secured.admin_url, "gateway")
    env |= {
        "OPSWIRE_NATS_PASSWORD": "not-the-password",
        "OPSWIRE_JWT_SECRET": secrets.token_urlsafe(40),
        "OPSWIRE_PORT": "0",
    }
    process = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "opswire", "gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 1
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("opswire gateway: cannot connect to NATS") and "refused the credentials" in last
    assert "Traceback" not in process.stderr and "not-the-password" not in process.stderr
