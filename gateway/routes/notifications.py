"""`/notifications/channels`: where a user's alerts are sent (Apprise URLs), kept by ingest.

The URL is a secret: replies carry it masked, and the audit log records only the
channel id.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from gateway.deps import Audit, CurrentUserId, Rpc
from gateway.errors import BEARER, NOT_FOUND
from opswire.contract import rpc as calls
from opswire.contract.resources import ChannelCreate, ChannelPublic, ChannelTestResult, ChannelUpdate

router = APIRouter(prefix="/notifications/channels", tags=["notifications"], responses=BEARER)


@router.get("")
async def list_channels(user_id: CurrentUserId, rpc: Rpc) -> list[ChannelPublic]:
    """The user's channels, URLs masked, each with its last error."""
    return await rpc.call_typed(calls.CHANNELS_LIST, calls.ByUser(user_id=user_id))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_channel(
    body: ChannelCreate, user_id: CurrentUserId, rpc: Rpc, audit: Audit
) -> ChannelPublic:
    """Add a channel; 422 if Apprise does not understand the URL."""
    channel = await rpc.call_typed(
        calls.CHANNELS_CREATE, calls.ChannelCreateFor(user_id=user_id, **body.model_dump())
    )
    await audit.record(user_id, "channel.create", f"channel:{channel.id}")
    return channel


@router.put("/{channel_id}", responses=NOT_FOUND)
async def update_channel(
    channel_id: uuid.UUID, body: ChannelUpdate, user_id: CurrentUserId, rpc: Rpc, audit: Audit
) -> ChannelPublic:
    """Change some fields; the ones left out (or null) stay as they are."""
    changes = body.model_dump(exclude_none=True)
    request = calls.ChannelUpdateFor(user_id=user_id, channel_id=channel_id, **changes)
    channel = await rpc.call_typed(calls.CHANNELS_UPDATE, request)
    await audit.record(user_id, "channel.update", f"channel:{channel_id}", {"fields": sorted(changes)})
    return channel


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_channel(channel_id: uuid.UUID, user_id: CurrentUserId, rpc: Rpc, audit: Audit) -> Response:
    """Delete a channel (and what it still had to send)."""
    await rpc.call_typed(calls.CHANNELS_DELETE, calls.ChannelRef(user_id=user_id, channel_id=channel_id))
    await audit.record(user_id, "channel.delete", f"channel:{channel_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{channel_id}/test", responses=NOT_FOUND)
async def test_channel(channel_id: uuid.UUID, user_id: CurrentUserId, rpc: Rpc) -> ChannelTestResult:
    """Send a test notification now: `{sent, error}` (a receiver's failure is not an HTTP error)."""
    return await rpc.call_typed(calls.CHANNELS_TEST, calls.ChannelRef(user_id=user_id, channel_id=channel_id))
