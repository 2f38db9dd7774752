"""auth.register / login / me."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth import store
from auth.models import AuditRecord, User
from auth.passwords import Passwords
from auth.runtime import AuthRuntime
from auth.sessions import open_session
from auth.throttle import retry_after, throttled
from opswire.contract import rpc as calls
from opswire.contract.resources import TokenPair, UserPublic, UserRegister
from opswire.contract.types import utc_now
from opswire.runtime.faststream_rpc import rpc_handler
from opswire.runtime.rpc import RpcError

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "Incorrect email or password"
EMAIL_TAKEN = "Email already registered"
REGISTRATION_CLOSED = "Registration is closed; ask an administrator for an account"
# Throttled logins are answered with one cheap upsert, so many may wait at once without
# holding up anyone; the argon2 work behind them is bounded by the throttle itself.
LOGIN_WORKERS = 32
PARALLEL_WAIT_S = 1.0


def register(rt: AuthRuntime) -> None:
    broker, subjects = rt.broker, rt.subjects

    @rpc_handler(broker, subjects, calls.AUTH_REGISTER)
    async def register_user(req: UserRegister) -> UserPublic:
        """Create a user; the email is stored lower-cased. Refused while registration is closed."""
        if rt.settings.registration == "closed":
            raise RpcError("forbidden", REGISTRATION_CLOSED)
        return await create_user(rt.sessions, rt.passwords, req)

    @rpc_handler(broker, subjects, calls.AUTH_LOGIN, max_workers=LOGIN_WORKERS)
    async def login(req: calls.LoginFrom) -> TokenPair:
        """Email + password -> token pair; unknown email and wrong password look the same."""
        with rt.checking.claim(req.email) as mine:
            if not mine:  # another attempt at this account is being checked right now
                log.warning("login throttled", extra={"client": req.client, "retry_after_s": 1})
                raise throttled(PARALLEL_WAIT_S)
            return await check_login(req)

    async def check_login(req: calls.LoginFrom) -> TokenPair:
        wait = await rt.throttle.count_attempt(rt.sessions, req.email, req.client)
        if wait is not None:
            log.warning("login throttled", extra={"client": req.client, "retry_after_s": retry_after(wait)})
            raise throttled(wait)
        async with rt.sessions() as session:
            user = await store.user_by_email(session, req.email)
        ok = await rt.passwords.verify(user.password_hash if user else None, req.password)
        async with rt.sessions.begin() as session:
            if user is not None and ok:
                await rt.throttle.succeeded(session, req.email, req.client)
                return await open_session(rt, session, user.id)
            if user is not None:
                session.add(
                    AuditRecord(
                        user_id=user.id,
                        action="user.login_failed",
                        target=f"user:{user.id}",
                        detail={"client": req.client},
                        timestamp=utc_now(),
                    )
                )
        log.warning(
            "login failed",
            extra={
                "client": req.client,
                "user_id": str(user.id) if user else None,
            },
        )
        raise RpcError("unauthorized", BAD_CREDENTIALS)

    @rpc_handler(broker, subjects, calls.AUTH_ME)
    async def me(req: calls.ByUser) -> UserPublic:
        """The calling user."""
        async with rt.sessions() as session:
            user = await store.user_by_id(session, req.user_id)
        if user is None:
            raise RpcError("not_found", "User not found")
        return UserPublic.model_validate(user, from_attributes=True)


async def create_user(
    sessions: async_sessionmaker[AsyncSession], passwords: Passwords, req: UserRegister
) -> UserPublic:
    """Store a new user (also what `opswire user create` runs); conflict if the email exists."""
    password_hash = await passwords.hash(req.password)
    user = User(email=req.email.lower(), password_hash=password_hash, full_name=req.full_name)
    try:
        async with sessions.begin() as session:
            if await store.user_by_email(session, user.email) is not None:
                raise RpcError("conflict", EMAIL_TAKEN)
            session.add(user)
    except IntegrityError:
        # Two registrations of the same email raced; the unique index decided.
        raise RpcError("conflict", EMAIL_TAKEN) from None
    log.info("user registered", extra={"user_id": str(user.id)})
    return UserPublic.model_validate(user, from_attributes=True)
