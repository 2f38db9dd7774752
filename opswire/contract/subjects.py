"""Every NATS subject and JetStream stream name, built in one place.

Handlers never format subjects themselves: they call these functions, so the
contract in DESIGN §4 lives here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: list[str]
    max_age_s: float
    duplicate_window_s: float = 120.0


@dataclass(frozen=True)
class Subjects:
    prefix: str = "opswire"
    stream_prefix: str = "OPSWIRE"

    # --- telemetry (JetStream) -------------------------------------------------
    def metrics(self, server_id: str) -> str:
        return f"{self.prefix}.metrics.{server_id}"

    def logs(self, server_id: str) -> str:
        return f"{self.prefix}.logs.{server_id}"

    def alerts(self, server_id: str) -> str:
        return f"{self.prefix}.alerts.{server_id}"

    # --- events (JetStream, OPSWIRE_EVENTS) ------------------------------------
    def agent_connected(self, server_id: str) -> str:
        return f"{self.prefix}.agents.{server_id}.connected"

    def agent_disconnected(self, server_id: str) -> str:
        return f"{self.prefix}.agents.{server_id}.disconnected"

    def command_results(self, server_id: str) -> str:
        return f"{self.prefix}.commands.{server_id}.results"

    def audit(self, user_id: str) -> str:
        return f"{self.prefix}.audit.{user_id}"

    # --- core NATS ---------------------------------------------------------------
    def agent_inbox(self, server_id: str) -> str:
        """Request/reply: deliver a command frame to whichever gateway holds the agent."""
        return f"{self.prefix}.agent.{server_id}.inbox"

    def agent_control(self, server_id: str) -> str:
        """Close/replace notices for the gateway holding an agent (extension of DESIGN §4)."""
        return f"{self.prefix}.agent.{server_id}.control"

    def agent_any(self, server_id: str) -> str:
        """Both of the above: the one subscription a gateway makes for an agent it holds."""
        return f"{self.prefix}.agent.{server_id}.*"

    def presence_heartbeat(self) -> str:
        """Each gateway's periodic list of live agents (extension of DESIGN §4)."""
        return f"{self.prefix}.presence.heartbeat"

    def rpc(self, service: str, method: str) -> str:
        return f"{self.prefix}.rpc.{service}.{method}"

    def sessions_revoked(self) -> str:
        """auth -> every gateway: these sessions ended; refuse their access tokens (DESIGN §3)."""
        return f"{self.prefix}.sessions.revoked"

    # --- wildcards -----------------------------------------------------------------
    @property
    def all_metrics(self) -> str:
        return f"{self.prefix}.metrics.*"

    @property
    def all_logs(self) -> str:
        return f"{self.prefix}.logs.*"

    @property
    def all_alerts(self) -> str:
        return f"{self.prefix}.alerts.*"

    @property
    def all_presence(self) -> str:
        return f"{self.prefix}.agents.*.*"

    @property
    def all_command_results(self) -> str:
        return f"{self.prefix}.commands.*.results"

    @property
    def all_audit(self) -> str:
        return f"{self.prefix}.audit.*"

    # --- streams -------------------------------------------------------------------
    @property
    def metrics_stream(self) -> str:
        return f"{self.stream_prefix}_METRICS"

    @property
    def logs_stream(self) -> str:
        return f"{self.stream_prefix}_LOGS"

    @property
    def alerts_stream(self) -> str:
        return f"{self.stream_prefix}_ALERTS"

    @property
    def events_stream(self) -> str:
        return f"{self.stream_prefix}_EVENTS"

    @property
    def audit_stream(self) -> str:
        """Private to auth (not one of DESIGN §4's public streams): who did what."""
        return f"{self.stream_prefix}_AUDIT"

    def streams(self) -> list[StreamSpec]:
        day = 86_400.0
        return [
            StreamSpec(self.metrics_stream, [self.all_metrics], max_age_s=7 * day),
            StreamSpec(self.logs_stream, [self.all_logs], max_age_s=7 * day),
            StreamSpec(self.alerts_stream, [self.all_alerts], max_age_s=30 * day),
            StreamSpec(self.events_stream, [self.all_presence, self.all_command_results], max_age_s=30 * day),
            # Apart from the public events, so the read-only `subscriber` role can be given
            # the whole events stream without anyone's audit log.
            StreamSpec(self.audit_stream, [self.all_audit], max_age_s=30 * day),
        ]
