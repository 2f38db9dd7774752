"""deploy/prometheus/prometheus.yml finds what `opswire up`, compose and k8s expose, and the
Grafana dashboard only queries series that opswire really exports (opswire.runtime.metrics)."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from prometheus_client import REGISTRY

from opswire.launcher.up import PROMETHEUS_TARGETS
from opswire.runtime import metrics
from opswire.runtime.permissions import SERVICE_ROLES
from tests.deploy.natsproc import REPO

PROMETHEUS: dict[str, Any] = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
DASHBOARD: dict[str, Any] = json.loads((REPO / "deploy" / "grafana" / "opswire.json").read_text())


def _job(name: str) -> dict[str, Any]:
    (job,) = [job for job in PROMETHEUS["scrape_configs"] if job["job_name"] == name]
    return job


def test_prometheus_reads_the_targets_opswire_up_writes() -> None:
    files = _job("opswire-up")["file_sd_configs"][0]["files"]
    assert files == [f".opswire/{PROMETHEUS_TARGETS}"]


def test_prometheus_scrapes_every_compose_service_on_its_ops_port() -> None:
    targets = [t["targets"][0] for t in _job("opswire-compose")["static_configs"]]
    assert sorted(targets) == sorted(f"{role}:9180" for role in SERVICE_ROLES)


def _exported_names() -> set[str]:
    """Every sample name the process exports (the opswire series and the process collectors)."""
    metrics.frame("accepted")  # so a labelled series has a sample to list
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def test_every_dashboard_query_uses_exported_series() -> None:
    exported = (
        _exported_names()
        | {
            # Histogram samples exist once something was observed; their names are fixed.
            f"{base}{suffix}"
            for base in (
                "opswire_ingest_batch_size",
                "opswire_ingest_batch_duration_seconds",
                "opswire_rpc_duration_seconds",
                "opswire_http_request_duration_seconds",
            )
            for suffix in ("_bucket", "_count", "_sum")
        }
        | {"opswire_commands_total"}
    )
    queries = [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]
    assert queries
    used = {name for query in queries for name in re.findall(r"\b((?:opswire|process)_[a-z_]+)\b", query)}
    assert used and used <= exported, used - exported
