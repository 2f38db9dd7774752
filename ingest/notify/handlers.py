"""ingest.channels.*: a user's notification channels (RPC), URLs masked on the way out."""

from __future__ import annotations

import orjson

from ingest.notify import apprise_url, message
from ingest.notify import store as notify_store
from ingest.notify.models import Channel
from ingest.runtime import IngestRuntime
from opswire.contract import rpc as calls
from opswire.contract.resources import ChannelPublic, ChannelTestResult
from opswire.contract.types import utc_now
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.rpc import NotFound

# A test send must answer before the gateway's RPC call gives up (OPSWIRE_RPC_TIMEOUT_S, 5 s).
TEST_SEND_TIMEOUT_S = 4.0


def channel_public(channel: Channel) -> ChannelPublic:
    return ChannelPublic(
        id=channel.id,
        name=channel.name,
        url=apprise_url.mask(channel.url),
        enabled=channel.enabled,
        created_at=channel.created_at,
        last_sent_at=channel.last_sent_at,
        last_error=channel.last_error,
        last_error_at=channel.last_error_at,
    )


def register(rt: IngestRuntime) -> None:
    broker, subjects = rt.broker, rt.subjects

    @rpc_handler(broker, subjects, calls.CHANNELS_LIST)
    async def channels_list(req: calls.ByUser) -> list[ChannelPublic]:
        async with rt.sessions() as session:
            return [channel_public(c) for c in await notify_store.list_channels(session, req.user_id)]

    @rpc_handler(broker, subjects, calls.CHANNELS_CREATE)
    async def channels_create(req: calls.ChannelCreateFor) -> ChannelPublic:
        apprise_url.check(req.url)
        channel = Channel(user_id=req.user_id, name=req.name, url=req.url, enabled=req.enabled)
        async with rt.sessions.begin() as session:
            session.add(channel)
        return channel_public(channel)

    @rpc_handler(broker, subjects, calls.CHANNELS_UPDATE)
    async def channels_update(req: calls.ChannelUpdateFor) -> ChannelPublic:
        """Partial update; a new URL clears the old one's last error; disabling drops what was queued."""
        changes = req.model_dump(exclude_unset=True, exclude_none=True, exclude={"user_id", "channel_id"})
        if "url" in changes:
            apprise_url.check(changes["url"])
        async with rt.sessions.begin() as session:
            channel = await notify_store.get_channel(session, req.user_id, req.channel_id)
            if channel is None:
                raise NotFound("Channel not found")
            if changes.get("url", channel.url) != channel.url:
                channel.last_error = channel.last_error_at = None
            for key, value in changes.items():
                setattr(channel, key, value)
            if not channel.enabled:
                await notify_store.drop_pending(session, channel.id)
        return channel_public(channel)

    @rpc_handler(broker, subjects, calls.CHANNELS_DELETE)
    async def channels_delete(req: calls.ChannelRef) -> None:
        """Delete the channel and whatever it still had to send."""
        async with rt.sessions.begin() as session:
            channel = await notify_store.get_channel(session, req.user_id, req.channel_id)
            if channel is None:
                raise NotFound("Channel not found")
            await session.delete(channel)

    @rpc_handler(broker, subjects, calls.CHANNELS_TEST)
    async def channels_test(req: calls.ChannelRef) -> ChannelTestResult:
        """Send a test notification now (also when disabled); the outcome is the channel's
        last error or last sent time, as for alerts."""
        async with rt.sessions() as session:
            channel = await notify_store.get_channel(session, req.user_id, req.channel_id)
        if channel is None:
            raise NotFound("Channel not found")
        title, body = message.test_body(rt.settings.public_url)
        error = await apprise_url.send(channel.url, title, orjson.dumps(body).decode(), TEST_SEND_TIMEOUT_S)
        async with rt.sessions.begin() as session:
            stored = await notify_store.get_channel(session, req.user_id, req.channel_id)
            if stored is not None:
                if error is None:
                    stored.last_sent_at = utc_now()
                else:
                    stored.last_error, stored.last_error_at = error, utc_now()
        return ChannelTestResult(sent=error is None, error=error)
