"""auth.register / login / refresh / me."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from auth import store
from auth.models import User
from auth.runtime import AuthRuntime
from opswire.contract import rpc as calls
from opswire.contract.resources import TokenPair, TokenRefresh, UserLogin, UserPublic, UserRegister
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.rpc import RpcError
from opswire.runtime.tokens import InvalidToken

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "Incorrect email or password"
EMAIL_TAKEN = "Email already registered"


def register(rt: AuthRuntime) -> None:
    broker, subjects = rt.broker, rt.subjects

    @rpc_handler(broker, subjects, calls.AUTH_REGISTER)
    async def register_user(req: UserRegister) -> UserPublic:
        """Create a user; the email is stored lower-cased."""
        password_hash = await rt.passwords.hash(req.password)
        user = User(email=req.email.lower(), password_hash=password_hash, full_name=req.full_name)
        try:
            async with rt.sessions.begin() as session:
                if await store.user_by_email(session, user.email) is not None:
                    raise RpcError("conflict", EMAIL_TAKEN)
                session.add(user)
        except IntegrityError:
            # Two registrations of the same email raced; the unique index decided.
            raise RpcError("conflict", EMAIL_TAKEN) from None
        log.info("user registered", extra={"user_id": str(user.id)})
        return UserPublic.model_validate(user, from_attributes=True)

    @rpc_handler(broker, subjects, calls.AUTH_LOGIN)
    async def login(req: UserLogin) -> TokenPair:
        """Email + password -> token pair; unknown email and wrong password look the same."""
        async with rt.sessions() as session:
            user = await store.user_by_email(session, req.email)
        ok = await rt.passwords.verify(user.password_hash if user else None, req.password)
        if user is None or not ok:
            raise RpcError("unauthorized", BAD_CREDENTIALS)
        return rt.tokens.issue_pair(user.id)

    @rpc_handler(broker, subjects, calls.AUTH_REFRESH)
    async def refresh(req: TokenRefresh) -> TokenPair:
        """A refresh token (never an access token) of an existing user -> a new pair."""
        try:
            user_id = rt.tokens.verify(req.refresh_token, "refresh")
        except InvalidToken as exc:
            raise RpcError("unauthorized", str(exc)) from None
        async with rt.sessions() as session:
            if await store.user_by_id(session, user_id) is None:
                raise RpcError("unauthorized", "Invalid or expired token")
        return rt.tokens.issue_pair(user_id)

    @rpc_handler(broker, subjects, calls.AUTH_ME)
    async def me(req: calls.ByUser) -> UserPublic:
        """The calling user."""
        async with rt.sessions() as session:
            user = await store.user_by_id(session, req.user_id)
        if user is None:
            raise RpcError("not_found", "User not found")
        return UserPublic.model_validate(user, from_attributes=True)
