"""Long lists through the gateway: pages relayed as one bare array, `Link` for the next page."""

from __future__ import annotations

from typing import Any

import orjson
from nats.aio.msg import Msg

from opswire.contract import rpc as calls
from opswire.runtime.rpc import Page, page_reply, rpc_subject
from tests.gateway.stubs import Api


async def serve_pages(api: Api, method: calls.RpcMethod[Any], total: int, per_page: int) -> list[Any]:
    """A responder answering `total` items `per_page` at a time (resume = next index)."""
    requests: list[Any] = []

    async def respond(msg: Msg) -> None:
        request = orjson.loads(msg.data)
        requests.append(request)
        start = int(request.get("resume", "0"))
        end = min(start + per_page, total, start + request["limit"])
        page = Page([orjson.dumps({"n": i}) for i in range(start, end)])
        if end < total:
            page.next = str(end)
        if "resume" not in request:
            page.more = "CURSOR-AFTER-LIMIT"
        await msg.respond(page_reply(page))

    await api.nc.subscribe(rpc_subject(api.gateway.subjects, method), cb=respond)
    await api.nc.flush()
    return requests


async def test_history_pages_are_relayed_as_one_array_with_a_next_link(api: Api) -> None:
    requests = await serve_pages(api, calls.METRICS_HISTORY, total=25, per_page=10)
    response = await api.client.get(
        f"/api/v1/metrics/{api.server_id}/history", params={"limit": 22}, headers=api.headers
    )
    assert response.status_code == 200
    assert response.json() == [{"n": i} for i in range(22)]
    assert [(r.get("resume"), r["limit"]) for r in requests] == [(None, 22), ("10", 12), ("20", 2)]
    link = response.headers["link"]
    assert link.endswith('; rel="next"') and "cursor=CURSOR-AFTER-LIMIT" in link and "limit=22" in link


async def test_a_cursor_is_passed_on_and_a_last_page_has_no_link(api: Api) -> None:
    await api.stubs.ok(calls.LOGS_QUERY, [])
    response = await api.client.get(
        f"/api/v1/logs/{api.server_id}", params={"cursor": "abc"}, headers=api.headers
    )
    assert response.status_code == 200 and response.json() == []
    assert "link" not in response.headers
    [sent] = api.stubs.calls(calls.LOGS_QUERY)
    assert sent["cursor"] == "abc" and "resume" not in sent


async def test_an_oversized_cursor_is_422(api: Api) -> None:
    await api.stubs.ok(calls.AUDIT_LIST, [])
    response = await api.client.get("/api/v1/audit", params={"cursor": "x" * 300}, headers=api.headers)
    assert response.status_code == 422
    assert api.stubs.calls(calls.AUDIT_LIST) == []
