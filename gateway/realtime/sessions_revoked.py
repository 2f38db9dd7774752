"""Ended sessions, as this gateway knows them (DESIGN §3, §9 'Auth').

The gateway verifies access tokens locally, so it must also know which sessions auth has
ended: auth announces them on `opswire.sessions.revoked` and this set keeps each id until
the last access token of that session has expired — so it is bounded by the number of
sessions ended within one access-token lifetime. A starting gateway asks auth for the
recent ones (it missed their announcements). Sockets of a session register here and are
told the moment it ends.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from opswire.contract import rpc as calls
from opswire.contract.events import SessionsRevoked
from opswire.contract.subjects import Subjects
from opswire.contract.types import utc_now
from opswire.runtime.rpc import RpcClient, RpcError

log = logging.getLogger(__name__)

OnRevoked = Callable[[], None]
PRUNE_INTERVAL = timedelta(seconds=60)


class RevokedSessions:
    def __init__(self) -> None:
        # When each id may be forgotten (its access tokens have all expired by then).
        self._until: dict[uuid.UUID, datetime] = {}
        self._pruned_at = utc_now()
        # No id needs keeping longer than one access-token lifetime (set by start()).
        self._longest = timedelta(days=1)
        self._watchers: dict[uuid.UUID, set[OnRevoked]] = {}
        self._subscription: Subscription | None = None

    def __len__(self) -> int:
        return len(self._until)

    def is_revoked(self, session_id: uuid.UUID | None) -> bool:
        if session_id is None:
            return False
        until = self._until.get(session_id)
        return until is not None and until > utc_now()

    def revoke(self, session_ids: Iterable[uuid.UUID], until: datetime) -> None:
        """Refuse these sessions until `until`; end their sockets now."""
        self._prune()
        until = min(until, utc_now() + self._longest)
        for sid in session_ids:
            self._until[sid] = max(until, self._until.get(sid, until))
            for on_revoked in list(self._watchers.get(sid, ())):
                on_revoked()

    def watch(self, session_id: uuid.UUID, on_revoked: OnRevoked) -> Callable[[], None]:
        """Call `on_revoked` when the session ends; returns the function that stops watching."""
        self._watchers.setdefault(session_id, set()).add(on_revoked)

        def unwatch() -> None:
            watchers = self._watchers.get(session_id)
            if watchers is not None:
                watchers.discard(on_revoked)
                if not watchers:
                    del self._watchers[session_id]

        return unwatch

    async def start(self, nc: NatsClient, subjects: Subjects, rpc: RpcClient, access_ttl_s: int) -> None:
        """Listen for announcements, then load the ones sent before this gateway started."""
        self._longest = timedelta(seconds=access_ttl_s)
        self._subscription = await nc.subscribe(subjects.sessions_revoked(), cb=self._on_message)
        try:
            recent = await rpc.call_typed(calls.AUTH_REVOKED_SESSIONS, calls.NoArgs())
        except RpcError as exc:
            # auth may start after the gateway; its announcements still arrive from now on.
            log.warning("recently ended sessions not loaded", extra={"code": exc.code})
            return
        self.revoke(recent, utc_now() + self._longest)

    async def stop(self) -> None:
        if self._subscription is not None:
            try:
                await self._subscription.unsubscribe()
            except Exception as exc:  # connection closing: the server forgets it anyway
                log.debug("unsubscribe failed", extra={"error": repr(exc)})
            self._subscription = None

    async def _on_message(self, msg: Msg) -> None:
        try:
            notice = SessionsRevoked.model_validate_json(msg.data)
        except ValidationError:
            log.warning("malformed session revocation ignored", extra={"subject": msg.subject})
            return
        self.revoke(notice.session_ids, notice.until)

    def _prune(self) -> None:
        """Forget expired ids, at most once per PRUNE_INTERVAL (a full pass over the set)."""
        now = utc_now()
        if now - self._pruned_at < PRUNE_INTERVAL:
            return
        self._pruned_at = now
        self._until = {sid: until for sid, until in self._until.items() if until > now}
