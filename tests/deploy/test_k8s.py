"""deploy/k8s/opswire.yaml: NATS config from the generator, each service only its own password,
the role passwords created by the user (never shipped), NATS reachable only from opswire pods."""

from __future__ import annotations

import re

import pytest

from opswire.runtime.natsconf import (
    CLIENT_PORT,
    CLUSTER_NODES,
    MONITOR_PORT,
    ROUTE_PASSWORD_ENV,
    ROUTE_PORT,
    password_env,
    render_k8s,
    route_url_env,
)
from opswire.runtime.permissions import ROLES, SERVICE_ROLES
from tests.deploy.natsproc import REPO
from tests.deploy.yamltext import documents, uncommented

TEXT = (REPO / "deploy" / "k8s" / "opswire.yaml").read_text()
DOCS = documents(TEXT)
SECRET_NAMES = [password_env(role) for role in ROLES] + [ROUTE_PASSWORD_ENV]


def _doc(kind: str, name: str) -> str:
    found = [
        doc
        for doc in DOCS
        if re.search(rf"(?m)^kind: {kind}$", doc) and re.search(rf"(?m)^metadata: \{{name: {name}[,}}]", doc)
    ]
    assert len(found) == 1, f"{kind} {name}: {len(found)} documents"
    return found[0]


def _secret_refs(doc: str) -> list[tuple[str, str, str]]:
    """(env name, secret, key) of every secretKeyRef."""
    return re.findall(
        r"\{name: ([A-Z0-9_]+), valueFrom: \{secretKeyRef: \{name: ([\w-]+), key: ([A-Z0-9_]+)\}\}\}", doc
    )


def test_nats_config_map_is_the_generators_output() -> None:
    doc = _doc("ConfigMap", "opswire-nats")
    body = doc.split("  nats.conf: |\n", 1)[1]
    lines = [line.removeprefix("    ") for line in body.splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    assert "\n".join(lines) + "\n" == render_k8s(), "regenerate with `opswire nats-config --k8s`"


def test_role_passwords_are_not_shipped_but_created_with_kubectl() -> None:
    assert "kind: Secret\nmetadata: {name: opswire-nats}" not in TEXT
    assert "kubectl create secret generic opswire-nats" in TEXT
    for name in SECRET_NAMES:
        assert f"--from-literal={name}=" in TEXT
        assert not re.search(rf"(?m)^\s+{name}:\s", TEXT), f"{name} has a value in the manifest"


def test_nats_gets_every_password_and_whole_route_urls() -> None:
    doc = _doc("StatefulSet", "nats")
    assert "replicas: 3" in doc and "serviceName: nats" in doc
    assert 'args: ["-c", "/etc/nats/nats.conf"]' in doc
    assert "configMap: {name: opswire-nats}" in doc and "mountPath: /etc/nats, readOnly: true" in doc
    assert "fieldRef: {fieldPath: metadata.name}" in doc  # POD_NAME, the server name
    refs = _secret_refs(doc)
    assert sorted(refs) == sorted((name, "opswire-nats", name) for name in SECRET_NAMES)
    for n in range(CLUSTER_NODES):
        url = f"nats-route://route:$({ROUTE_PASSWORD_ENV})@nats-{n}.nats:{ROUTE_PORT}"
        assert f'{{name: {route_url_env(n)}, value: "{url}"}}' in doc
    # The route password is defined before the URLs that expand it.
    assert doc.index(f"name: {ROUTE_PASSWORD_ENV},") < doc.index(f"name: {route_url_env(0)},")
    assert "runAsNonRoot: true" in doc and "allowPrivilegeEscalation: false" in doc


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_each_deployment_gets_only_its_own_password(role: str) -> None:
    doc = _doc("Deployment", f"opswire-{role}")
    assert f"opswire.dev/nats-role: {role}}}" in doc  # the label the NetworkPolicy admits
    assert f"- {{name: OPSWIRE_NATS_USER, value: {role}}}" in doc
    assert _secret_refs(doc) == [("OPSWIRE_NATS_PASSWORD", "opswire-nats", password_env(role))]
    assert "secretRef: {name: opswire-nats}" not in doc  # never the whole Secret
    others = [name for name in SECRET_NAMES if name != password_env(role)]
    assert not any(other in doc for other in others)


def test_network_policy_admits_only_opswire_pods_to_nats() -> None:
    doc = "\n".join(uncommented(_doc("NetworkPolicy", "nats"))) + "\n"
    assert "podSelector: {matchLabels: {app: nats}}\n  policyTypes: [Ingress]" in doc
    rules = doc.split("  ingress:\n", 1)[1].split("    - from:\n")[1:]
    assert len(rules) == 2
    client, route = rules
    assert f"{{key: opswire.dev/nats-role, operator: In, values: [{', '.join(ROLES)}]}}" in client
    assert f"ports: [{{port: {CLIENT_PORT}, protocol: TCP}}]" in client
    assert "podSelector: {matchLabels: {app: nats}}" in route
    assert f"ports: [{{port: {ROUTE_PORT}, protocol: TCP}}]" in route
    assert "namespaceSelector" not in doc and "ipBlock" not in doc
    assert str(MONITOR_PORT) not in doc


def test_nats_is_not_exposed_outside_the_cluster() -> None:
    service = _doc("Service", "nats")
    assert "clusterIP: None" in service
    assert "LoadBalancer" not in TEXT and "NodePort" not in TEXT and "hostPort" not in TEXT
    config = _doc("ConfigMap", "opswire")
    assert f"NATS_URL: nats://nats-0.nats:{CLIENT_PORT}," in config
