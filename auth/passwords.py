"""Password hashing with argon2, off the event loop (hashing is deliberately slow CPU work)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verified against for unknown emails, so "no such user" costs as much as "wrong password".
        # Made at start-up in a worker thread (warm_up), not while the app is being built.
        self._dummy_hash: str | None = None

    async def warm_up(self) -> None:
        await asyncio.to_thread(self._ensure_dummy)

    def _ensure_dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash("opswire-dummy-password")
        return self._dummy_hash

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True if `password` matches; with no hash, spends the same time and says False."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            self._hasher.verify(password_hash or self._ensure_dummy(), password)
        except (VerificationError, InvalidHashError):
            return False
        return password_hash is not None
