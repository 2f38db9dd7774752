"""`/auth`: register, login (JSON or OAuth2 form), refresh, me, logout, logout-all, password."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from gateway.deps import Audit, ClientAddress, CurrentClaims, CurrentUserId, Rpc, State
from gateway.errors import BEARER, Responses, error
from opswire.contract import rpc as calls
from opswire.contract.resources import (
    PasswordChange,
    TokenPair,
    TokenRefresh,
    UserLogin,
    UserPublic,
    UserRegister,
)
from opswire.runtime.rpc import RpcError, validation_detail
from opswire.runtime.tokens import InvalidToken

log = logging.getLogger(__name__)

router = APIRouter(prefix="/auth", tags=["auth"])

# Wrong password and unknown email must be indistinguishable, whatever the service says.
BAD_CREDENTIALS = "Incorrect email or password"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# The account of a valid token was deleted meanwhile.
_USER_GONE: Responses = {404: error("The user no longer exists")}

_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": UserLogin.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string", "description": "The email."},
                        "password": {"type": "string", "format": "password"},
                        "grant_type": {"type": "string", "enum": ["password"]},
                    },
                }
            },
        },
    }
}


def _invalid(exc: ValidationError, rename: dict[str, str]) -> RequestValidationError:
    # validation_detail drops the inputs, so a rejected password is never echoed back.
    errors = [
        {**err, "loc": ["body", *(rename.get(str(part), part) for part in err["loc"])]}
        for err in validation_detail(exc)
    ]
    return RequestValidationError(errors)


async def _read_login(request: Request) -> UserLogin:
    """The credentials from a JSON body, or from an OAuth2 password form (username = email)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in _FORM_TYPES:
        form = await request.form()
        fields = {"email": form.get("username"), "password": form.get("password")}
        try:
            return UserLogin.model_validate(fields)
        except ValidationError as exc:
            raise _invalid(exc, {"email": "username"}) from None
    try:
        return UserLogin.model_validate_json(await request.body())
    except ValidationError as exc:
        raise _invalid(exc, {}) from None


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses={
        403: error("Registration is closed (OPSWIRE_REGISTRATION=closed)"),
        409: error("Email already registered"),
    },
)
async def register(body: UserRegister, rpc: Rpc, audit: Audit) -> UserPublic:
    """Create an account; returns the user (never the password)."""
    user = await rpc.call_typed(calls.AUTH_REGISTER, body)
    await audit.record(user.id, "user.register", f"user:{user.id}")
    return user


@router.post(
    "/login",
    openapi_extra=_LOGIN_BODY,
    responses={
        401: error(BAD_CREDENTIALS),
        429: error("Too many failed logins for this account or address; see Retry-After"),
    },
)
async def login(request: Request, rpc: Rpc, audit: Audit, state: State, client: ClientAddress) -> TokenPair:
    """Exchange email and password for an access/refresh token pair (one new session)."""
    credentials = await _read_login(request)
    attempt = calls.LoginFrom(**credentials.model_dump(), client=client)
    try:
        pair = await rpc.call_typed(calls.AUTH_LOGIN, attempt)
    except RpcError as exc:
        if exc.code == "unauthorized":
            raise RpcError("unauthorized", BAD_CREDENTIALS) from None
        raise
    try:
        user_id = state.tokens.verify(pair.access_token, "access")
    except InvalidToken:
        # auth and gateway disagree on OPSWIRE_JWT_SECRET: every later request will fail too.
        log.error("login token does not verify here; check OPSWIRE_JWT_SECRET")
    else:
        await audit.record(user_id, "user.login", f"user:{user_id}")
    return pair


@router.post("/refresh", responses={401: error("Invalid, expired or already used")})
async def refresh(body: TokenRefresh, rpc: Rpc) -> TokenPair:
    """Exchange a refresh token for a new pair. Each refresh token works once: using a spent
    one again ends its whole session (it was copied)."""
    return await rpc.call_typed(calls.AUTH_REFRESH, body)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=BEARER)
async def logout(claims: CurrentClaims, rpc: Rpc, audit: Audit) -> Response:
    """End this session: its refresh token stops working, its access tokens and sockets too."""
    if claims.session_id is not None:
        await rpc.call_typed(
            calls.AUTH_LOGOUT, calls.SessionRef(user_id=claims.user_id, session_id=claims.session_id)
        )
    await audit.record(claims.user_id, "user.logout", f"user:{claims.user_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT, responses=BEARER)
async def logout_all(user_id: CurrentUserId, rpc: Rpc, audit: Audit) -> Response:
    """End every session of this user, this one included."""
    await rpc.call_typed(calls.AUTH_LOGOUT_ALL, calls.ByUser(user_id=user_id))
    await audit.record(user_id, "user.logout_all", f"user:{user_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **BEARER,
        **_USER_GONE,
        403: error("Current password is incorrect"),
        429: error("Too many wrong passwords; see Retry-After"),
    },
)
async def change_password(body: PasswordChange, claims: CurrentClaims, rpc: Rpc, audit: Audit) -> Response:
    """Change the password. Every other session ends; this one (and its tokens) stays."""
    request = calls.PasswordChangeFor(
        **body.model_dump(), user_id=claims.user_id, session_id=claims.session_id
    )
    await rpc.call_typed(calls.AUTH_PASSWORD, request)
    await audit.record(claims.user_id, "user.password_change", f"user:{claims.user_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", responses={**BEARER, **_USER_GONE})
async def me(user_id: CurrentUserId, rpc: Rpc) -> UserPublic:
    """The authenticated user."""
    return await rpc.call_typed(calls.AUTH_ME, calls.ByUser(user_id=user_id))
