"""A user's threshold rules have a ceiling (OPSWIRE_MAX_THRESHOLDS_PER_USER): a clear conflict."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ingest.settings import IngestSettings
from opswire.contract import rpc as calls
from opswire.runtime.rpc import RpcClient, RpcError
from tests.ingest.support import running_ingest


def rule(user_id: str) -> dict[str, object]:
    return {
        "user_id": user_id,
        "server_id": str(uuid.uuid4()),
        "metric_type": "cpu",
        "comparison": "gt",
        "threshold_value": 90,
    }


async def test_rules_beyond_the_ceiling_are_refused_even_when_created_at_once(
    ingest_settings: IngestSettings, rpc: RpcClient
) -> None:
    settings = ingest_settings.model_copy(update={"max_thresholds_per_user": 3})
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    async with running_ingest(settings):
        results = await asyncio.gather(
            *(rpc.call(calls.THRESHOLDS_CREATE, rule(alice)) for _ in range(6)),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, RpcError)]
        assert len(refused) == 3
        assert {(r.code, r.detail) for r in refused} == {
            ("conflict", "Threshold rule limit reached (3 per user)")
        }
        assert len(await rpc.call(calls.THRESHOLDS_LIST, {"user_id": alice})) == 3
        assert await rpc.call(calls.THRESHOLDS_CREATE, rule(bob))  # everyone has their own
        with pytest.raises(RpcError):
            await rpc.call(calls.THRESHOLDS_CREATE, rule(alice))
