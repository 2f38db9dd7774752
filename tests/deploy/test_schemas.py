"""The shipped artifacts against real schemas and the real settings validators.

compose.yaml is checked against the compose-spec schema (vendored in check-jsonschema),
every Kubernetes document against the Kubernetes API schemas (kubernetes-validate, strict:
unknown fields are errors), both offline. Every value a shipped file hands a service goes
through that service's settings class, as it would at start-up; placeholders for secrets are
refused there, so nothing starts with them.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import secrets
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from opswire import __version__
from opswire.cli import settings_class
from opswire.runtime.natsconf import password_env
from opswire.runtime.permissions import ROLES, SERVICE_ROLES
from opswire.runtime.settings import JwtSettings
from tests.deploy.natsproc import REPO

K8S_VERSION = "1.37.0"
OPS_PORT = 9180
COMPOSE_TEXT = (REPO / "compose.yaml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
CLUSTER_TEXT = (REPO / "compose.cluster.yaml").read_text()
CLUSTER: dict[str, Any] = yaml.safe_load(CLUSTER_TEXT)
K8S_TEXT = (REPO / "deploy" / "k8s" / "opswire.yaml").read_text()
K8S: list[dict[str, Any]] = [doc for doc in yaml.safe_load_all(K8S_TEXT) if doc]
REQUIRED_VAR = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")


def _compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def _random_secrets() -> dict[str, str]:
    """What a user puts in .env: letters and digits for NATS, a long token for the JWT."""
    values = {password_env(role): "p" + secrets.token_hex(32) for role in ROLES}
    values["OPSWIRE_POSTGRES_PASSWORD"] = secrets.token_hex(24)
    values["OPSWIRE_JWT_SECRET"] = secrets.token_urlsafe(48)
    return values


def _settings(service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's settings as its process would read them from exactly `env`."""
    for name in [*os.environ]:
        if name.startswith(("OPSWIRE_", "NATS_", "DATABASE_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_class(service)()


# --- compose ----------------------------------------------------------------------------------


def test_compose_matches_the_compose_spec() -> None:
    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(COMPOSE)]
    assert errors == []


def test_the_cluster_override_matches_the_compose_spec() -> None:
    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(CLUSTER)]
    assert errors == []


def _overridden(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A service as `docker compose -f compose.yaml -f compose.cluster.yaml` merges it:
    mappings merged key by key, volumes by their target path, anything else replaced."""
    merged = dict(base)
    for key, value in override.items():
        if key in ("environment", "networks") and key in base:
            merged[key] = {**base[key], **value}
        elif key == "volumes" and key in base:
            by_target = {v.split(":")[1]: v for v in [*base[key], *value]}
            merged[key] = list(by_target.values())
        else:
            merged[key] = value
    return merged


def test_the_cluster_override_runs_three_nodes_that_find_each_other() -> None:
    services = CLUSTER["services"]
    nodes = {"nats": 1, "nats-2": 2, "nats-3": 3}
    for name, number in nodes.items():
        node = _overridden(COMPOSE["services"].get(name, {}), services[name])
        config = f"./deploy/nats/cluster-node{number}.conf:/etc/nats/cluster.conf:ro"
        assert config in node["volumes"]
        assert node["command"] == ["-c", "/etc/nats/cluster.conf"]
        assert not node.get("ports"), "NATS stays inside the stack"
        # Every variable the node's config reads is in its environment.
        wanted = set(re.findall(r"\$(OPSWIRE_[A-Z0-9_]+)", (REPO / config.split(":")[0]).read_text()))
        assert wanted <= set(node["environment"]), f"{name} lacks {wanted - set(node['environment'])}"
    data = [
        next(
            v
            for v in _overridden(COMPOSE["services"].get(n, {}), services[n])["volumes"]
            if v.endswith(":/data")
        )
        for n in nodes
    ]
    assert len(set(data)) == 3, "each node keeps its own JetStream store"
    # Route URLs name the hosts the nodes are reachable as: node 1 keeps the name `nats`.
    assert "nats-1" in services["nats"]["networks"]["default"]["aliases"]


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_cluster_services_use_every_node_and_three_replicas(
    role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = _random_secrets()
    service = _overridden(COMPOSE["services"][role], CLUSTER["services"][role])
    settings = _settings(role, _compose_env(service, values), monkeypatch)
    assert settings.stream_replicas == 3
    assert settings.nats_user == role
    assert sorted(settings.nats_url.split(",")) == [f"nats://nats-{n}:4222" for n in (1, 2, 3)]


def test_the_compose_spec_check_finds_mistakes() -> None:
    schema = _compose_schema()
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["gateway"]["healthcheck"]["intervall"] = "5s"
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


def test_compose_checks_the_health_of_everything_and_confines_each_service() -> None:
    services = COMPOSE["services"]
    for name in ("nats", "postgres", *SERVICE_ROLES):
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"
    for role in SERVICE_ROLES:
        service = services[role]
        assert f":{OPS_PORT}/health" in " ".join(service["healthcheck"]["test"])
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert service["deploy"]["resources"]["limits"]["memory"]
        assert service["image"] == f"opswire:{__version__}"
        assert service["depends_on"]["nats"]["condition"] == "service_healthy"


def test_env_example_lists_every_secret_compose_requires_and_fills_in_none() -> None:
    required = set(REQUIRED_VAR.findall(COMPOSE_TEXT + CLUSTER_TEXT))
    example = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            example[name] = value
    assert set(example) == required
    assert all(value == "" for value in example.values()), "no secret value is shipped"


def _compose_env(service: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    return {
        name: REQUIRED_VAR.sub(lambda m: values[m.group(1)], str(value))
        for name, value in service["environment"].items()
    }


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_compose_values_pass_each_services_settings(role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    values = _random_secrets()
    settings = _settings(role, _compose_env(COMPOSE["services"][role], values), monkeypatch)
    assert settings.nats_user == role
    assert settings.metrics_port == OPS_PORT
    assert settings.metrics_host == "0.0.0.0"
    if role != "gateway":
        assert values["OPSWIRE_POSTGRES_PASSWORD"] in settings.database_url


# --- Kubernetes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", K8S, ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_k8s_document_matches_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_kubernetes_check_finds_mistakes() -> None:
    deployment = next(d for d in K8S if d["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def _find(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in K8S if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}"
    return found[0]


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_each_deployment_is_confined_probed_and_budgeted(role: str) -> None:
    pod = _find("Deployment", f"opswire-{role}")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == f"opswire:{__version__}"
    confined = container["securityContext"]
    assert confined["readOnlyRootFilesystem"] is True and confined["allowPrivilegeEscalation"] is False
    assert confined["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["ops"] == OPS_PORT
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "ops"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "ops"}
    budget = _find("PodDisruptionBudget", f"opswire-{role}")["spec"]
    assert budget["selector"]["matchLabels"] == {"app": f"opswire-{role}"}
    assert budget["minAvailable"] == 1


def _k8s_env(role: str) -> dict[str, str]:
    """What the pod of `role` gets: the ConfigMap, the Secret (as shipped), its own env."""
    env = {k: str(v) for k, v in _find("ConfigMap", "opswire")["data"].items()}
    env |= {k: str(v) for k, v in _find("Secret", "opswire")["stringData"].items()}
    (container,) = _find("Deployment", f"opswire-{role}")["spec"]["template"]["spec"]["containers"]
    for item in container["env"]:
        env[item["name"]] = item.get("value", "p" + secrets.token_hex(32))  # secretKeyRef: the user's
    return env


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_k8s_values_pass_each_services_settings_once_the_secret_is_filled_in(
    role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _k8s_env(role)
    env["OPSWIRE_JWT_SECRET"] = secrets.token_urlsafe(48)
    env["DATABASE_URL"] = env["DATABASE_URL"].replace("CHANGE-ME", secrets.token_hex(16))
    settings = _settings(role, env, monkeypatch)
    assert settings.stream_replicas == 3
    assert settings.metrics_port == OPS_PORT


def test_the_shipped_jwt_placeholder_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    placeholder = _find("Secret", "opswire")["stringData"]["OPSWIRE_JWT_SECRET"]
    monkeypatch.setenv("OPSWIRE_JWT_SECRET", placeholder)
    with pytest.raises(ValidationError, match="OPSWIRE_JWT_SECRET"):
        JwtSettings()  # type: ignore[call-arg]


# --- the image ----------------------------------------------------------------------------------


def test_image_is_server_only_pinned_non_root_with_a_healthcheck() -> None:
    text = (REPO / "deploy" / "Dockerfile").read_text()
    base = re.search(r"(?m)^ARG PYTHON_IMAGE=(\S+)$", text)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1))
    assert all(
        line.split()[1].startswith("${PYTHON_IMAGE}")
        for line in text.splitlines()
        if line.startswith("FROM ")
    )
    assert "--constraint requirements.lock '.[server]'" in text
    assert "-r requirements.lock" not in text
    assert re.search(r"(?m)^USER 10001:10001$", text)
    assert re.search(r"(?m)^HEALTHCHECK .*\n\s+CMD .*/health", text)
    assert f"OPSWIRE_METRICS_PORT={OPS_PORT}" in text
