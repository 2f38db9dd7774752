"""Ingest settings (env: OPSWIRE_*, NATS_URL, DATABASE_URL)."""

from __future__ import annotations

from pydantic import Field

from opswire.runtime.settings import DatabaseSettings, PositiveSeconds


class IngestSettings(DatabaseSettings):
    batch_size: int = Field(
        default=1000, ge=1, le=10_000, description="Most messages per JetStream fetch (one COPY)."
    )
    batch_max_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=64 * 1024,
        le=256 * 1024 * 1024,
        description="Most bytes per JetStream fetch, so big frames make shorter batches "
        "instead of a slow-consumer disconnect (at least one message always fits).",
    )
    batch_timeout_s: PositiveSeconds = Field(
        default=1.0, description="Longest wait to fill a batch before storing what arrived."
    )
    ack_wait_s: PositiveSeconds = Field(
        default=5.0,
        description="A batch not acked within this time is redelivered (to another replica: "
        "the takeover time of a dead one); a live consumer extends it while it works.",
    )
    retry_delay_s: PositiveSeconds = Field(
        default=5.0, description="Redelivery delay of a batch whose write failed (database down)."
    )
    alert_hysteresis: float = Field(
        default=2.0,
        ge=0,
        le=100,
        description="Percentage points past the line before a breach clears.",
    )
    retention_days: float = Field(default=30.0, gt=0, le=36_500)
    telemetry_stream_max_age_s: float = Field(
        default=86_400.0,
        ge=60,
        le=36_500 * 86_400,
        description="How long the metrics and logs streams keep a message: the longest ingest "
        "outage survived without loss. With OPSWIRE_STREAM_MAX_BYTES it sets how big a fleet the "
        "streams hold (~19 MB per server per day at one 1 KB sample every 5 s); never longer than "
        "OPSWIRE_RETENTION_DAYS.",
    )
    max_thresholds_per_user: int = Field(default=500, ge=1, le=100_000)
    retention_interval_s: PositiveSeconds = Field(default=3600.0)
    # --- notifications (ingest/notify) ---
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s]+$",
        description="The dashboard's address as users reach it: the `link` in notifications.",
    )
    notify_timeout_s: PositiveSeconds = Field(
        default=10.0, description="Longest wait for one notification receiver."
    )
    notify_retry_base_s: PositiveSeconds = Field(
        default=2.0, description="First retry delay of a failed notification; doubles each try."
    )
    notify_retry_max_s: PositiveSeconds = Field(
        default=600.0, description="Longest delay between two tries of a notification."
    )
    notify_max_attempts: int = Field(
        default=12, ge=1, le=100, description="Tries before a notification is given up."
    )
    tier_interval_s: PositiveSeconds = Field(
        default=10.0, description="How often stored samples are rolled up into the history tiers."
    )
    retention_1m_days: float = Field(default=7.0, gt=0, le=36_500, description="Keep 1-min points.")
    retention_10m_days: float = Field(default=90.0, gt=0, le=36_500, description="Keep 10-min points.")
    retention_1h_days: float = Field(default=730.0, gt=0, le=36_500, description="Keep 1-h points.")

    def tier_retention_days(self) -> dict[str, float]:
        """Retention of each history tier, by its resolution name."""
        return {"1m": self.retention_1m_days, "10m": self.retention_10m_days, "1h": self.retention_1h_days}
