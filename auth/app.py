"""The auth service: users, servers, API keys, tokens, presence, the audit log.

Wiring only, through the shared skeleton (opswire.runtime.service): NATS, the `auth`
schema, the events and audit streams, then the handlers and consumers.
"""

from __future__ import annotations

from faststream import FastStream

from auth.handlers import register_handlers
from auth.runtime import AuthRuntime
from auth.settings import AuthSettings


def create_app(settings: AuthSettings) -> FastStream:
    runtime = AuthRuntime(settings)
    register_handlers(runtime)
    return runtime.app()
