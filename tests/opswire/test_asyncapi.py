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
    for subject in (
        "opswire.metrics.{server_id}",
        "opswire.logs.{server_id}",
        "opswire.alerts.{server_id}",
        "opswire.agents.{server_id}.connected",
        "opswire.commands.{server_id}.results",
        "opswire.agent.{server_id}.inbox",
        "opswire.rpc.auth.login",
    ):
        assert subject in channels


def test_every_rpc_documents_its_reply() -> None:
    document = json.loads(render())
    rpc = [name for name in document["operations"] if name.startswith("opswire.rpc.")]
    assert rpc
    for name in rpc:
        [reply] = document["operations"][name]["reply"]["messages"]
        assert reply == {"$ref": f"#/channels/{name}/messages/Reply"}
    message = document["components"]["messages"]["opswire.rpc.auth.servers.list:Reply"]
    ok, error = message["payload"]["oneOf"]
    listed = {"type": "array", "items": {"$ref": "#/components/schemas/ServerPublic"}}
    assert ok["properties"]["data"] == listed
    assert error == {"$ref": "#/components/schemas/RpcErrorReply"}
    assert "ServerPublic" in document["components"]["schemas"]
