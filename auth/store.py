"""Queries on the auth tables. Every lookup on behalf of a user is scoped to that user."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.models import ApiKey, Server, User


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


# --- users ---------------------------------------------------------------------------------------


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(col(User.email) == email.lower()))
    return result.scalar_one_or_none()


async def user_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The user, row-locked until the transaction ends: one ceiling check at a time per user."""
    result = await session.execute(select(User).where(col(User.id) == user_id).with_for_update())
    return result.scalar_one_or_none()


async def count_servers(session: AsyncSession, user_id: uuid.UUID) -> int:
    result = await session.execute(
        select(func.count()).select_from(Server).where(col(Server.owner_id) == user_id)
    )
    return int(result.scalar_one())


async def count_active_keys(session: AsyncSession, user_id: uuid.UUID) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(ApiKey)
        .join(Server, col(Server.id) == col(ApiKey.server_id))
        .where(col(Server.owner_id) == user_id, col(ApiKey.is_active))
    )
    return int(result.scalar_one())


# --- servers -------------------------------------------------------------------------------------


async def owned_server(session: AsyncSession, user_id: uuid.UUID, server_id: uuid.UUID) -> Server | None:
    result = await session.execute(
        select(Server).where(col(Server.id) == server_id, col(Server.owner_id) == user_id)
    )
    return result.scalar_one_or_none()


async def list_servers(session: AsyncSession, user_id: uuid.UUID) -> list[Server]:
    result = await session.execute(
        select(Server).where(col(Server.owner_id) == user_id).order_by(col(Server.created_at), col(Server.id))
    )
    return list(result.scalars())


async def update_server(
    session: AsyncSession, user_id: uuid.UUID, server_id: uuid.UUID, changes: Mapping[str, Any]
) -> Server | None:
    server = await owned_server(session, user_id, server_id)
    if server is None:
        return None
    for name, value in changes.items():
        setattr(server, name, value)
    return server


async def delete_server(session: AsyncSession, user_id: uuid.UUID, server_id: uuid.UUID) -> bool:
    """Delete the server; its API keys go with it (ON DELETE CASCADE)."""
    result = await session.execute(
        delete(Server).where(col(Server.id) == server_id, col(Server.owner_id) == user_id)
    )
    assert isinstance(result, CursorResult)
    return bool(result.rowcount)


# --- API keys ------------------------------------------------------------------------------------


async def list_keys(session: AsyncSession, user_id: uuid.UUID, server_id: uuid.UUID | None) -> list[ApiKey]:
    query = (
        select(ApiKey)
        .join(Server, col(Server.id) == col(ApiKey.server_id))
        .where(col(Server.owner_id) == user_id)
        .order_by(col(ApiKey.created_at).desc(), col(ApiKey.id))
    )
    if server_id is not None:
        query = query.where(col(ApiKey.server_id) == server_id)
    result = await session.execute(query)
    return list(result.scalars())


async def owned_key(session: AsyncSession, user_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    result = await session.execute(
        select(ApiKey)
        .join(Server, col(Server.id) == col(ApiKey.server_id))
        .where(col(ApiKey.id) == key_id, col(Server.owner_id) == user_id)
    )
    return result.scalar_one_or_none()
