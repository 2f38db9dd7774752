"""What the gateway holds while it runs, created in the lifespan (never at import)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from gateway.realtime.sessions_revoked import RevokedSessions
from gateway.settings import GatewaySettings
from opswire.contract.subjects import Subjects
from opswire.runtime.rpc import RpcClient
from opswire.runtime.tokens import TokenService


@dataclass
class GatewayState:
    settings: GatewaySettings
    subjects: Subjects
    nc: NatsClient
    js: JetStreamContext
    rpc: RpcClient
    tokens: TokenService
    gateway_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    revoked: RevokedSessions = field(default_factory=RevokedSessions)
