"""The shipped AsyncAPI document is the one the code generates."""

import json
from pathlib import Path

from opswire.asyncapi import render


def test_shipped_asyncapi_is_current(repo_root: Path) -> None:
    shipped = json.loads((repo_root / "docs" / "asyncapi.json").read_text())
    generated = json.loads(render())
    assert shipped == generated, "run: opswire asyncapi > docs/asyncapi.json"


def test_documents_every_public_subject() -> None:
    channels = json.loads(render())["channels"]
    for subject in ("opswire.metrics.{server_id}", "opswire.logs.{server_id}", "opswire.alerts.{server_id}",
                    "opswire.agents.{server_id}.connected", "opswire.commands.{server_id}.results",
                    "opswire.agent.{server_id}.inbox", "opswire.rpc.auth.login"):
        assert subject in channels
