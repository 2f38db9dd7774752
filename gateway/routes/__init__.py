"""REST routes (DESIGN §5): thin handlers that validate, call a service over NATS, map the reply.

Service errors (`RpcError`) become HTTP responses in one place, `gateway/errors.py`, which
also holds what the OpenAPI document says of them (the shared `Error` body): every /api/v1
operation calls a service, so 503 is declared for all of them here.
"""

from fastapi import APIRouter
from fastapi.routing import APIRoute

from gateway.errors import SERVICES
from gateway.routes import (
    alerts,
    api_keys,
    audit,
    auth,
    commands,
    docker,
    health,
    logs,
    metrics,
    notifications,
    servers,
)


def operation_id(route: APIRoute) -> str:
    """`<tag>-<handler>` (`servers-list_servers`), as client generators expect, rather than
    FastAPI's `list_servers_api_v1_servers_get`. Handler names are unique across routes."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


api_router = APIRouter(generate_unique_id_function=operation_id, responses=SERVICES)
for _module in (auth, servers, api_keys, metrics, logs, commands, docker, alerts, audit, notifications):
    api_router.include_router(_module.router)

root_router = APIRouter(generate_unique_id_function=operation_id)
root_router.include_router(health.router)
