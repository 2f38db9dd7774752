"""REST routes (DESIGN §5): thin handlers that validate, call a service over NATS, map the reply.

Service errors (`RpcError`) become HTTP responses in one place, `gateway/errors.py`.
"""

from fastapi import APIRouter

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
    servers,
)

api_router = APIRouter()
for _module in (auth, servers, api_keys, metrics, logs, commands, docker, alerts, audit):
    api_router.include_router(_module.router)

root_router = APIRouter()
root_router.include_router(health.router)
