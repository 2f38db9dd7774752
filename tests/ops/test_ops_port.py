"""The ops port (DESIGN §10): every service of `opswire up` answers /health, /ready and a
Prometheus /metrics that prometheus-client's own parser reads, with the series §10 lists;
/ready says which of the process's own dependencies is missing; a port in use is one line."""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opswire.launcher.embedded import free_port
from opswire.runtime.opsport import OpsPortError, OpsServer, ops_app
from opswire.runtime.permissions import SERVICE_ROLES
from tests.helpers.client import eventually
from tests.helpers.up import opswire_up

# Every process: RPC latency is served by the services, REST and frames by the gateway.
SERIES = {
    "gateway": {
        "opswire_gateway_frames",
        "opswire_gateway_publish_buffer_depth",
        "opswire_gateway_connections",
        "opswire_http_request_duration_seconds",
        "process_resident_memory_bytes",
    },
    "auth": {"opswire_rpc_duration_seconds", "opswire_consumer_pending_messages"},
    "ingest": {
        "opswire_rpc_duration_seconds",
        "opswire_consumer_pending_messages",
        "opswire_ingest_batch_size",
        "opswire_ingest_batch_duration_seconds",
    },
    "commands": {"opswire_rpc_duration_seconds", "opswire_commands"},
}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="opswire-ops-") as tmp:
        yield Path(tmp) / "data"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_every_service_of_opswire_up_is_scraped(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSWIRE_LOG_FORMAT", "json")
    async with opswire_up(data_dir, free_port(), "--demo") as (_process, banner):
        targets = json.loads((data_dir / "prometheus-targets.json").read_text())
        by_service = {t["labels"]["service"]: t["targets"][0] for t in targets}
        assert set(by_service) == set(SERVICE_ROLES)
        async with httpx.AsyncClient(timeout=10) as http:
            for service, target in by_service.items():
                assert f"http://{target}/metrics" in banner
                assert (await http.get(f"http://{target}/health")).json() == {"status": "ok"}
                ready = await http.get(f"http://{target}/ready")
                assert ready.status_code == 200, ready.text
                expected = (
                    {"nats": "ok"}
                    if service == "gateway"
                    else {"service": "ok", "nats": "ok", "database": "ok"}
                )
                assert ready.json()["checks"] == expected
                scraped = await http.get(f"http://{target}/metrics")
                assert scraped.headers["content-type"].startswith("text/plain")
                families = {family.name for family in text_string_to_metric_families(scraped.text)}
                assert SERIES[service] <= families, f"{service}: {SERIES[service] - families} missing"

            async def flowing() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
                gateway = _samples((await http.get(f"http://{by_service['gateway']}/metrics")).text)
                accepted = gateway.get(("opswire_gateway_frames_total", (("outcome", "accepted"),)), 0)
                return gateway if accepted > 0 else None

            # The demo agent's samples: accepted by the gateway, stored by ingest in batches.
            gateway = await eventually(flowing, timeout_s=30)
            assert gateway[("opswire_gateway_connections", (("kind", "agent"),))] == 1

            async def stored() -> bool:
                ingest = _samples((await http.get(f"http://{by_service['ingest']}/metrics")).text)
                return ingest.get(("opswire_ingest_batch_size_count", (("kind", "ingest-metrics"),)), 0) > 0

            assert await eventually(stored, timeout_s=30)
    # Every line a service printed is one JSON object after the supervisor's "[name] " prefix.
    lines = [
        line
        for line in (data_dir.parent / "up.log").read_text().splitlines()
        if line.startswith("[gateway ]")
    ]
    records = [json.loads(line.split("] ", 1)[1]) for line in lines]
    access = [r for r in records if r.get("logger") == "opswire.access"]
    assert access and {"method", "path", "status", "duration_ms", "client", "time", "level"} <= set(access[0])


def _client(checks: dict[str, str]) -> httpx.AsyncClient:
    async def report() -> dict[str, str]:
        return checks

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=ops_app(report)), base_url="http://ops")


async def test_ready_names_the_dependency_that_is_missing() -> None:
    async with _client({"nats": "ok", "database": "unavailable"}) as http:
        assert (await http.get("/health")).status_code == 200
        ready = await http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["detail"] == "Not ready: database"
        assert ready.json()["checks"] == {"nats": "ok", "database": "unavailable"}
    async with _client({"nats": "ok", "database": "ok"}) as http:
        ready = await http.get("/ready")
        assert ready.json() == {"status": "ready", "checks": {"nats": "ok", "database": "ok"}}


async def test_a_port_in_use_is_a_one_line_error() -> None:
    async def checks() -> dict[str, str]:
        return {}

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OpsPortError, match=rf"^cannot open the metrics port 127\.0\.0\.1:{port}: .+$"):
            await OpsServer("127.0.0.1", port, checks).start()


async def test_port_zero_serves_on_a_free_port_until_stopped() -> None:
    async def checks() -> dict[str, str]:
        return {"nats": "ok"}

    server = OpsServer("127.0.0.1", 0, checks)
    await server.start()
    assert server.port
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"http://127.0.0.1:{server.port}/ready")).status_code == 200
    await server.stop()
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(f"http://127.0.0.1:{server.port}/health")
