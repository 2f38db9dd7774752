"""GET /openapi.json: real response schemas, clean operation ids, and the error contract
(401 where a credential is needed, 503 wherever a service is called, one `Error` body)."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from gateway.app import create_app
from gateway.errors import Error
from gateway.settings import GatewaySettings
from opswire.contract import rpc as calls
from tests.gateway.stubs import Api, docker_result
from tests.helpers.chatops_agent import FakeHost


async def _spec(api: Api) -> dict[str, Any]:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def _schema(operation: dict[str, Any], status: str = "200") -> dict[str, Any]:
    schema: dict[str, Any] = operation["responses"][status]["content"]["application/json"]["schema"]
    return schema


async def test_routes_document_their_response_models(api: Api) -> None:
    paths = (await _spec(api))["paths"]
    servers = _schema(paths["/api/v1/servers"]["get"])
    assert servers["type"] == "array"
    assert servers["items"] == {"$ref": "#/components/schemas/ServerPublic"}
    expected = {
        ("/api/v1/servers", "post", "201"): "ServerPublic",
        ("/api/v1/auth/login", "post", "200"): "TokenPair",
        ("/api/v1/auth/me", "get", "200"): "UserPublic",
        ("/api/v1/api-keys", "post", "201"): "ApiKeyCreated",
        ("/api/v1/commands/{server_id}", "post", "200"): "CommandResult",
        (
            "/api/v1/docker/{server_id}/containers/{container_id}/{action}",
            "post",
            "200",
        ): "DockerActionResult",
        ("/api/v1/alerts/{alert_id}/resolve", "post", "200"): "AlertPublic",
        ("/api/v1/metrics/{server_id}", "get", "200"): "MetricsSample",
    }
    for (path, method, status), model in expected.items():
        assert _schema(paths[path][method], status) == {"$ref": f"#/components/schemas/{model}"}
    audit = _schema(paths["/api/v1/audit"]["get"])
    assert audit["items"] == {"$ref": "#/components/schemas/AuditEntry"}


async def test_operation_ids_are_tag_and_handler(api: Api) -> None:
    paths = (await _spec(api))["paths"]
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z-]+-[a-z_]+", op_id) for op_id in ids), ids
    assert paths["/api/v1/servers"]["get"]["operationId"] == "servers-list_servers"
    assert paths["/api/v1/auth/login"]["post"]["operationId"] == "auth-login"
    assert paths["/ready"]["get"]["operationId"] == "health-ready"


# --- the error contract (issue 11): 401, 503 and one error schema -------------------------------

ERROR_REF = {"$ref": "#/components/schemas/Error"}
# What stays out of /api/v1 and needs no token: liveness, readiness (its own 503 is documented).
UNAUTHENTICATED_ROOT = {"/health", "/ready"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The document as the app builds it: no NATS, no services, nothing mocked."""
    settings = GatewaySettings.model_validate({"jwt_secret": secrets.token_urlsafe(48)})
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    # The whole API, not a path or two: the checks below must not pass on an empty list.
    assert len([path for path, _, _ in operations if path.startswith("/api/v1/")]) >= 35
    return operations


def _needs_credentials(op: dict[str, Any]) -> bool:
    api_key = any(
        param["in"] == "header" and param["name"].lower() == "x-api-key" for param in op.get("parameters", ())
    )
    return bool(op.get("security")) or api_key


def test_every_secured_operation_documents_401(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    secured = [(path, method, op) for path, method, op in operations if _needs_credentials(op)]
    assert len(secured) >= 30
    missing = [f"{method.upper()} {path}" for path, method, op in secured if "401" not in op["responses"]]
    assert not missing, missing


def test_every_operation_calling_a_service_documents_503(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    assert {path for path, _, _ in operations if not path.startswith("/api/v1/")} == UNAUTHENTICATED_ROOT
    missing = [
        f"{method.upper()} {path}"
        for path, method, op in operations
        if path.startswith("/api/v1/") and "503" not in op["responses"]
    ]
    assert not missing, missing


def test_every_error_response_but_422_is_the_shared_error_schema(spec: dict[str, Any]) -> None:
    errors = {
        f"{status} {method.upper()} {path}": response
        for path, method, op in _operations(spec)
        for status, response in op["responses"].items()
        if status[0] in "45" and status != "422"
    }
    assert len(errors) >= 100
    wrong = [name for name, response in errors.items() if _json_schema(response) != ERROR_REF]
    assert not wrong, wrong
    # Each keeps a description of its own, not FastAPI's bare "Bad Gateway".
    assert all(response["description"] for response in errors.values())
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"]
    assert error["properties"]["detail"]["type"] == "string"


def _json_schema(response: dict[str, Any]) -> Any:
    return response.get("content", {}).get("application/json", {}).get("schema")


def test_containers_are_an_array_of_the_typed_container(spec: dict[str, Any]) -> None:
    listing = _schema(spec["paths"]["/api/v1/docker/{server_id}/containers"]["get"])
    assert listing["type"] == "array"
    assert listing["items"] == {"$ref": "#/components/schemas/ContainerSummary"}
    container = spec["components"]["schemas"]["ContainerSummary"]
    assert set(container["required"]) == {"id", "name", "image", "state", "status"}
    assert all(field["type"] == "string" for field in container["properties"].values())
    # What an agent reports beyond these is part of the reply too.
    assert container["additionalProperties"] is True


def test_every_tag_used_has_a_one_line_description(spec: dict[str, Any]) -> None:
    used = {tag for _, _, op in _operations(spec) for tag in op.get("tags", ())}
    described = {tag["name"]: tag.get("description", "") for tag in spec.get("tags", ())}
    assert used == set(described)
    assert all(text and "\n" not in text for text in described.values()), described


# --- and the bodies are what the document says -----------------------------------------------


async def test_error_bodies_are_the_documented_error(api: Api) -> None:
    unauthenticated = await api.client.get("/api/v1/servers")
    # No service answers the commands RPC in these tests: it is down.
    service_down = await api.client.post(
        f"/api/v1/commands/{api.server_id}", json={"command": "uptime"}, headers=api.headers
    )
    assert (unauthenticated.status_code, service_down.status_code) == (401, 503)
    for response in (unauthenticated, service_down):
        assert set(response.json()) == {"detail"}
        Error.model_validate(response.json())


async def test_the_typed_containers_keep_every_field_the_agent_sent(api: Api) -> None:
    # A ChatOps agent's entries carry `created` and `ports` beyond the five known fields.
    containers = FakeHost.CONTAINERS
    await api.stubs.ok(calls.DOCKER_RUN, docker_result(api.server_id, "list", data=containers))
    response = await api.client.get(f"/api/v1/docker/{api.server_id}/containers", headers=api.headers)
    assert response.status_code == 200
    assert response.json() == containers


async def test_a_malformed_container_entry_is_left_out(api: Api) -> None:
    good = {"id": "abc123", "name": "web", "image": "nginx", "state": "running", "status": "Up"}
    data = [good, {"id": "def456"}, "not-an-object", {**good, "id": 7}]
    await api.stubs.ok(calls.DOCKER_RUN, docker_result(api.server_id, "list", data=data))
    response = await api.client.get(f"/api/v1/docker/{api.server_id}/containers", headers=api.headers)
    assert response.status_code == 200
    assert response.json() == [good]
