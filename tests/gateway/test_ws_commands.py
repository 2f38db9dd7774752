"""Commands through the agent inbox: delivery, responses, and the agent going away."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from opswire.contract.events import DEADLINE_PASSED, AgentDelivery, AgentReply, DeliveryAck
from opswire.contract.frames import CommandFrame, DockerCommandFrame
from opswire.contract.types import utc_now
from tests.helpers.ws import Gateway, Services, agent, eventually, ping, recv, send


async def _deliver(nc: NatsClient, gw: Gateway, server_id: str, body: bytes) -> DeliveryAck:
    reply = await nc.request(gw.subjects.agent_inbox(server_id), body, timeout=5)
    return DeliveryAck.model_validate_json(reply.data)


async def test_command_reaches_the_agent_and_its_response_the_caller(
    gw: Gateway, services: Services, nc: NatsClient
) -> None:
    key, identity = services.add_agent()
    sid = str(identity.server_id)
    replies = await nc.subscribe(nc.new_inbox())
    delivery = AgentDelivery(
        frame=CommandFrame(command_id="cmd-1", command="uptime", timeout_s=7),
        reply_subject=replies.subject,
    )
    try:
        async with agent(gw, key) as ws:
            ack = await _deliver(nc, gw, sid, delivery.model_dump_json().encode())
            assert ack == DeliveryAck(delivered=True)
            assert await recv(ws) == {
                "type": "command",
                "command_id": "cmd-1",
                "command": "uptime",
                "timeout_s": 7,
            }
            response = {
                "type": "command_response",
                "command_id": "cmd-1",
                "output": " 10:00 up 3 days",
                "exit_code": 0,
                "duration_ms": 12,
            }
            await send(ws, response)
            reply = AgentReply.model_validate_json((await replies.next_msg(timeout=5)).data)
            await send(ws, response)  # answered already: the id is forgotten
            unknown = await recv(ws)
            assert (unknown["code"], unknown["message"]) == ("unknown_command", "Unknown command_id")
    finally:
        await replies.unsubscribe()
    assert reply.server_id == identity.server_id and reply.command_id == "cmd-1"
    assert reply.error is None and reply.response is not None
    assert reply.response.model_dump(exclude_none=True) == {
        **response,
        "timed_out": False,
        "truncated": False,
    }


async def test_docker_action_round_trip(gw: Gateway, services: Services, nc: NatsClient) -> None:
    key, identity = services.add_agent()
    replies = await nc.subscribe(nc.new_inbox())
    delivery = AgentDelivery(
        frame=DockerCommandFrame(command_id="d-1", action="list"), reply_subject=replies.subject
    )
    try:
        async with agent(gw, key) as ws:
            ack = await _deliver(nc, gw, str(identity.server_id), delivery.model_dump_json().encode())
            assert ack.delivered
            frame = await recv(ws)
            assert (frame["type"], frame["action"]) == ("docker_command", "list")
            await send(
                ws,
                {
                    "type": "docker_response",
                    "command_id": "d-1",
                    "success": True,
                    "message": "1 container",
                    "data": [{"id": "abc", "name": "web"}],
                },
            )
            reply = AgentReply.model_validate_json((await replies.next_msg(timeout=5)).data)
    finally:
        await replies.unsubscribe()
    assert reply.response is not None and reply.response.type == "docker_response"
    assert reply.response.data == [{"id": "abc", "name": "web"}]


async def test_no_agent_means_no_responders(gw: Gateway, services: Services, nc: NatsClient) -> None:
    key, identity = services.add_agent()
    body = AgentDelivery(
        frame=CommandFrame(command_id="c", command="true"), reply_subject="nobody.listens"
    ).model_dump_json()
    with pytest.raises(NoRespondersError):
        await nc.request(gw.subjects.agent_inbox(str(identity.server_id)), body.encode(), timeout=2)
    async with agent(gw, key):
        assert (await _deliver(nc, gw, str(identity.server_id), body.encode())).delivered
    # Once the gateway has seen the agent leave, its inbox is gone again.
    await eventually(lambda: not gw.realtime.sessions.sessions())
    with pytest.raises(NoRespondersError):
        await nc.request(gw.subjects.agent_inbox(str(identity.server_id)), body.encode(), timeout=2)


async def test_invalid_delivery_is_not_delivered(gw: Gateway, services: Services, nc: NatsClient) -> None:
    key, identity = services.add_agent()
    async with agent(gw, key) as ws:
        bad = json.dumps({"frame": {"type": "command", "command_id": "x"}, "reply_subject": "r"})
        ack = await _deliver(nc, gw, str(identity.server_id), bad.encode())
        assert not ack.delivered and ack.detail is not None and "Invalid delivery" in ack.detail
        await ping(ws)  # the agent got nothing but its pong


async def test_duplicate_command_id_is_refused(gw: Gateway, services: Services, nc: NatsClient) -> None:
    key, identity = services.add_agent()
    body = AgentDelivery(
        frame=CommandFrame(command_id="same", command="true"), reply_subject="r.1"
    ).model_dump_json()
    async with agent(gw, key) as ws:
        assert (await _deliver(nc, gw, str(identity.server_id), body.encode())).delivered
        second = await _deliver(nc, gw, str(identity.server_id), body.encode())
        assert second == DeliveryAck(delivered=False, detail="Duplicate command_id")
        assert (await recv(ws))["command_id"] == "same"
        await ping(ws)  # only one command frame reached the agent


async def test_pending_commands_are_answered_when_the_agent_leaves(
    gw: Gateway, services: Services, nc: NatsClient
) -> None:
    key, identity = services.add_agent()
    replies = await nc.subscribe(nc.new_inbox())
    delivery = AgentDelivery(
        frame=CommandFrame(command_id="slow", command="sleep 100"), reply_subject=replies.subject
    )
    try:
        async with agent(gw, key) as ws:
            ack = await _deliver(nc, gw, str(identity.server_id), delivery.model_dump_json().encode())
            assert ack.delivered
            assert (await recv(ws))["command_id"] == "slow"
        reply = AgentReply.model_validate_json((await replies.next_msg(timeout=5)).data)
    finally:
        await replies.unsubscribe()
    assert (reply.command_id, reply.error, reply.response) == ("slow", "Agent disconnected", None)


async def test_delivery_past_its_deadline_is_refused_and_never_reaches_the_agent(
    gw: Gateway, services: Services, nc: NatsClient
) -> None:
    """The commands service gave the command up at `not_after`: it must not run later."""
    key, identity = services.add_agent()
    delivery = AgentDelivery(
        frame=CommandFrame(command_id="late-1", command="uptime", timeout_s=5),
        reply_subject=nc.new_inbox(),
        not_after=utc_now() - timedelta(seconds=1),
    )
    async with agent(gw, key) as ws:
        ack = await _deliver(nc, gw, str(identity.server_id), delivery.model_dump_json().encode())
        assert ack == DeliveryAck(delivered=False, detail="Deadline passed", code=DEADLINE_PASSED)
        await ping(ws)  # the agent got nothing but its pong
        on_time = delivery.model_copy(update={"not_after": utc_now() + timedelta(seconds=30)})
        ack = await _deliver(nc, gw, str(identity.server_id), on_time.model_dump_json().encode())
        assert ack.delivered
        assert (await recv(ws))["command_id"] == "late-1"


async def test_answer_goes_to_the_fallback_when_its_waiter_is_gone(
    gw: Gateway, services: Services, nc: NatsClient
) -> None:
    """Nobody listens on the reply subject (the waiting commands replica died): the answer
    goes to the fallback subject, which any replica takes."""
    key, identity = services.add_agent()
    confirmed: list[str] = []

    async def confirm(msg: Msg) -> None:  # a live commands replica confirms what it hears
        confirmed.append(AgentReply.model_validate_json(msg.data).command_id)
        await msg.respond(b"ok")

    fallback = await nc.subscribe(nc.new_inbox())
    waiter = await nc.subscribe(nc.new_inbox(), cb=confirm)
    gone = nc.new_inbox()  # nobody subscribes here
    try:
        async with agent(gw, key) as ws:
            for command_id, reply_subject in (("to-waiter", waiter.subject), ("orphan", gone)):
                delivery = AgentDelivery(
                    frame=CommandFrame(command_id=command_id, command="uptime", timeout_s=5),
                    reply_subject=reply_subject,
                    fallback_subject=fallback.subject,
                )
                ack = await _deliver(nc, gw, str(identity.server_id), delivery.model_dump_json().encode())
                assert ack.delivered
                assert (await recv(ws))["command_id"] == command_id
            for command_id in ("to-waiter", "orphan"):
                await send(
                    ws,
                    {
                        "type": "command_response",
                        "command_id": command_id,
                        "output": command_id,
                        "exit_code": 0,
                        "duration_ms": 1,
                    },
                )
            reply = AgentReply.model_validate_json((await fallback.next_msg(timeout=5)).data)
    finally:
        await fallback.unsubscribe()
        await waiter.unsubscribe()
    # The confirmed answer stayed with its waiter; only the orphan came to the fallback.
    assert (reply.command_id, reply.server_id) == ("orphan", identity.server_id)
    assert reply.response is not None and reply.response.model_dump()["output"] == "orphan"
    assert confirmed == ["to-waiter"]


@pytest.mark.parametrize("bootstrapped", [True, False])
async def test_a_key_that_bootstrapped_is_sent_chatops_commands_before_its_first_sample(
    gw: Gateway, services: Services, nc: NatsClient, bootstrapped: bool
) -> None:
    key, identity = services.add_agent()
    sid = str(identity.server_id)
    if bootstrapped:  # what the ChatOps agent does before every connect
        async with httpx.AsyncClient(base_url=gw.url) as http:
            me = await http.get("/api/v1/api-keys/me", headers={"X-API-Key": key})
        assert me.status_code == 200 and me.json()["server_id"] == sid
    delivery = AgentDelivery(frame=CommandFrame(command_id="early", command="uptime"), reply_subject="r.1")
    async with agent(gw, key) as ws:
        ack = await _deliver(nc, gw, sid, delivery.model_dump_json().encode())
        assert ack.delivered
        sent = await recv(ws)
    expected = "execute_command" if bootstrapped else "command"
    assert sent["type"] == expected
    assert sent["request_id" if bootstrapped else "command_id"] == "early"
