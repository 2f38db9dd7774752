"""GET /openapi.json: real response schemas and clean operation ids."""

from __future__ import annotations

import re
from typing import Any

from tests.gateway.stubs import Api


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
