"""compose.yaml: NATS stays inside the stack, each service is its own NATS role, no literal secrets."""

from __future__ import annotations

import re

import pytest

from opswire.runtime.natsconf import password_env
from opswire.runtime.permissions import ROLES, SERVICE_ROLES
from tests.deploy.natsproc import REPO
from tests.deploy.yamltext import children, uncommented

TEXT = (REPO / "compose.yaml").read_text()
LINES = uncommented(TEXT)
SERVICES = children(LINES, "services", 0)
REQUIRED = re.compile(r"^\$\{(?P<name>[A-Z0-9_]+):\?[^}]+\}$")


def _value(block: list[str], key: str) -> str | None:
    for line in block:
        match = re.match(rf"^\s*{re.escape(key)}:\s*(.*)$", line)
        if match:
            return match.group(1).strip().strip('"')
    return None


def test_every_service_is_there() -> None:
    assert {"nats", "postgres", *SERVICE_ROLES} <= set(SERVICES)


def test_nats_is_not_published_on_the_host() -> None:
    nats = SERVICES["nats"]
    assert not any(line.strip().startswith("ports:") for line in nats)
    assert not any("4222" in line and ("ports" in line or line.strip().startswith("- ")) for line in LINES)
    assert not any(":8222" in line and "ports" in line for line in LINES)
    # The documented way to publish it binds loopback only.
    assert '# ports: ["127.0.0.1:4222:4222"]' in TEXT


def test_nats_runs_the_shipped_config_with_every_password_from_the_environment() -> None:
    nats = "\n".join(SERVICES["nats"])
    assert '"-c", "/etc/nats/single.conf"' in nats
    assert "./deploy/nats/single.conf:/etc/nats/single.conf:ro" in nats
    for role in ROLES:
        value = _value(SERVICES["nats"], password_env(role))
        assert value is not None, f"nats gets no {password_env(role)}"
        match = REQUIRED.match(value)
        assert match and match.group("name") == password_env(role), value


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_each_service_connects_as_its_own_role_only(role: str) -> None:
    block = SERVICES[role]
    assert _value(block, "OPSWIRE_NATS_USER") == role
    password = _value(block, "OPSWIRE_NATS_PASSWORD")
    assert password is not None
    match = REQUIRED.match(password)
    assert match and match.group("name") == password_env(role), password
    others = [password_env(r) for r in ROLES if r != role]
    assert not any(other in line for line in block for other in others)
    assert any(line.strip() == "<<: *env" for line in block)  # the shared settings, no identity


def test_the_shared_settings_hold_no_nats_identity() -> None:
    shared = "\n".join(LINES[: LINES.index("services:")])
    assert "OPSWIRE_NATS_USER" not in shared and "OPSWIRE_NATS_PASSWORD" not in shared


def test_no_literal_passwords() -> None:
    for line in LINES:
        match = re.match(r"^\s*([A-Z0-9_]*(PASSWORD|SECRET)[A-Z0-9_]*):\s*(.+)$", line)
        if match:
            assert REQUIRED.match(match.group(3).strip()), f"literal secret: {line.strip()}"
    database_urls = [line for line in LINES if "postgresql" in line and "://" in line]
    assert database_urls
    for line in database_urls:
        userinfo = line.split("://", 1)[1].split("@", 1)[0]
        _user, _, password = userinfo.partition(":")
        assert REQUIRED.match(password), f"literal database password in {line.strip()}"
    assert _value(SERVICES["postgres"], "POSTGRES_PASSWORD") == (
        "${OPSWIRE_POSTGRES_PASSWORD:?set OPSWIRE_POSTGRES_PASSWORD (see docs/security.md)}"
    )
