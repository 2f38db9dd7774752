"""RPC handlers of the auth service, one module per resource."""

from __future__ import annotations

from auth.handlers import audit, keys, servers, users
from auth.runtime import AuthRuntime


def register_handlers(runtime: AuthRuntime) -> None:
    for module in (users, servers, keys, audit):
        module.register(runtime)
