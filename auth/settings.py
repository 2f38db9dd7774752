"""Settings of the auth service (environment variables `OPSWIRE_*`, `NATS_URL`, `DATABASE_URL`)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from opswire.runtime.settings import DatabaseSettings, JwtSettings, PositiveSeconds

# An agent whose gateway went silent is offline after this many missed metrics
# intervals (DESIGN §9).
MISSED_INTERVALS = 3


class AuthSettings(DatabaseSettings, JwtSettings):
    presence_timeout_s: PositiveSeconds | None = Field(
        default=None,
        description="An online server not seen for this long is marked offline "
        "(default: 3 x metrics_interval_s).",
    )
    presence_sweep_interval_s: PositiveSeconds = Field(
        default=1.0, description="How often stale online servers are looked for."
    )

    registration: Literal["open", "closed"] = Field(
        default="open",
        description="closed: register is refused (403); accounts come from `opswire user create`.",
    )
    max_servers_per_user: int = Field(default=100, ge=1, le=100_000)
    max_api_keys_per_user: int = Field(
        default=200, ge=1, le=100_000, description="Active (not revoked) keys over all servers."
    )
    # Failed logins (docs/sessions.md "Throttled guessing"): after `free` failures in a row
    # each further failure locks the bucket for base x 2^(n - free) s, at most max_delay.
    login_account_free_failures: int = Field(default=5, ge=1, le=1000)
    login_address_free_failures: int = Field(default=20, ge=1, le=100_000)
    login_base_delay_s: PositiveSeconds = Field(default=1.0)
    login_max_delay_s: PositiveSeconds = Field(default=900.0)
    login_failure_memory_s: PositiveSeconds = Field(
        default=3600.0, description="Failures older than this (none since) are forgotten."
    )

    @model_validator(mode="after")
    def _default_presence_timeout(self) -> Self:
        if self.presence_timeout_s is None:
            self.presence_timeout_s = MISSED_INTERVALS * self.metrics_interval_s
        return self

    @property
    def presence_timeout(self) -> float:
        assert self.presence_timeout_s is not None  # filled in by the validator
        return self.presence_timeout_s
