"""Settings of the auth service (environment variables `OPSWIRE_*`, `NATS_URL`, `DATABASE_URL`)."""

from __future__ import annotations

from typing import Self

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

    @model_validator(mode="after")
    def _default_presence_timeout(self) -> Self:
        if self.presence_timeout_s is None:
            self.presence_timeout_s = MISSED_INTERVALS * self.metrics_interval_s
        return self

    @property
    def presence_timeout(self) -> float:
        assert self.presence_timeout_s is not None  # filled in by the validator
        return self.presence_timeout_s
