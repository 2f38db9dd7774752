"""Handlers of the auth service, one module per resource (RPC methods and consumers)."""

from __future__ import annotations

from auth.handlers import audit, keys, presence, servers, sessions, users
from auth.runtime import AuthRuntime


def register_handlers(runtime: AuthRuntime) -> None:
    for module in (users, sessions, servers, keys, audit, presence):
        module.register(runtime)
