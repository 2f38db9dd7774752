"""JWT access and refresh tokens (HS256, `OPSWIRE_JWT_SECRET`).

auth issues them; the gateway verifies access tokens locally (signature,
expiry, type) without a round trip. A refresh token is never an access token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import jwt

from opswire.contract.resources import TokenPair
from opswire.contract.types import utc_now

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]


class InvalidToken(Exception):
    """Expired, forged, malformed, or of the wrong type."""


@dataclass(frozen=True)
class TokenService:
    secret: str
    access_ttl_s: int = 900
    refresh_ttl_s: int = 7 * 86_400

    def _encode(self, user_id: uuid.UUID, kind: TokenType, ttl_s: int) -> str:
        now = utc_now()
        claims = {
            "sub": str(user_id),
            "type": kind,
            "iat": now,
            "exp": now + timedelta(seconds=ttl_s),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def issue_pair(self, user_id: uuid.UUID) -> TokenPair:
        return TokenPair(
            access_token=self._encode(user_id, "access", self.access_ttl_s),
            refresh_token=self._encode(user_id, "refresh", self.refresh_ttl_s),
            expires_in=self.access_ttl_s,
        )

    def verify(self, token: str, kind: TokenType = "access") -> uuid.UUID:
        """The user id in a valid token of the given type; InvalidToken otherwise."""
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "type"]}
            )
        except jwt.PyJWTError:
            raise InvalidToken("Invalid or expired token") from None
        if claims.get("type") != kind:
            raise InvalidToken("Invalid or expired token")
        try:
            return uuid.UUID(str(claims["sub"]))
        except ValueError:
            raise InvalidToken("Invalid or expired token") from None
