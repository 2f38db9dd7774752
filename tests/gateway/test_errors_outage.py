"""The gateway's own NATS connection being away is an outage: 503 with a detail, not 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from gateway.errors import NATS_AWAY, install_error_handlers


@pytest.mark.parametrize("error", NATS_AWAY)
async def test_nats_connection_away_is_503(error: type[Exception]) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/x")
    async def route() -> None:
        raise error()

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        reply = await http.get("/x")
    assert reply.status_code == 503
    assert reply.json() == {"detail": "Message bus unavailable, try again shortly"}
