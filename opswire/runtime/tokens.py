"""JWT access and refresh tokens (HS256, `OPSWIRE_JWT_SECRET`).

auth issues them; the gateway verifies access tokens locally (signature,
expiry, type) without a round trip. A refresh token is never an access token.

Both carry the session they belong to (`sid`); a refresh token also its generation
(`gen`): auth keeps each session's current generation, so a spent refresh token is
recognised when it comes back (docs/sessions.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt

from opswire.contract.resources import TokenPair
from opswire.contract.types import utc_now

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]


class InvalidToken(Exception):
    """Expired, forged, malformed, or of the wrong type."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID | None
    generation: int
    expires_at: datetime


@dataclass(frozen=True)
class TokenService:
    secret: str
    access_ttl_s: int = 900
    refresh_ttl_s: int = 7 * 86_400

    def _encode(
        self, user_id: uuid.UUID, kind: TokenType, expires_at: datetime, extra: dict[str, object]
    ) -> str:
        claims = {
            "sub": str(user_id),
            "type": kind,
            "iat": utc_now(),
            "exp": expires_at,
            "jti": uuid.uuid4().hex,
            **extra,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def issue_pair(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID | None = None,
        generation: int = 0,
        refresh_until: datetime | None = None,
    ) -> TokenPair:
        """An access and a refresh token; `refresh_until` caps the refresh token (a
        session's absolute end), and the access token never outlives it either."""
        now = utc_now()
        refresh_exp = now + timedelta(seconds=self.refresh_ttl_s)
        if refresh_until is not None:
            refresh_exp = min(refresh_exp, refresh_until)
        access_exp = min(now + timedelta(seconds=self.access_ttl_s), refresh_exp)
        session: dict[str, object] = {} if session_id is None else {"sid": str(session_id)}
        return TokenPair(
            access_token=self._encode(user_id, "access", access_exp, session),
            refresh_token=self._encode(user_id, "refresh", refresh_exp, {**session, "gen": generation}),
            expires_in=max(0, int((access_exp - now).total_seconds())),
        )

    def verify(self, token: str, kind: TokenType = "access") -> uuid.UUID:
        """The user id in a valid token of the given type; InvalidToken otherwise."""
        return self.claims(token, kind).user_id

    def claims(self, token: str, kind: TokenType = "access") -> TokenClaims:
        """What a valid token of the given type says; InvalidToken otherwise."""
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "type"]}
            )
        except jwt.PyJWTError:
            raise InvalidToken("Invalid or expired token") from None
        if claims.get("type") != kind:
            raise InvalidToken("Invalid or expired token")
        try:
            sid = claims.get("sid")
            generation = claims.get("gen", 0)
            if not isinstance(generation, int) or isinstance(generation, bool):
                raise ValueError("gen")
            return TokenClaims(
                user_id=uuid.UUID(str(claims["sub"])),
                session_id=None if sid is None else uuid.UUID(str(sid)),
                generation=generation,
                expires_at=datetime.fromtimestamp(float(claims["exp"]), UTC),
            )
        except (ValueError, TypeError):
            raise InvalidToken("Invalid or expired token") from None
