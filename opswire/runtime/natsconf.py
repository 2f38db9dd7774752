"""nats-server configuration rendered from the permission table (`permissions.py`).

`authorization_block` is the part every shipped config shares: one user per role
with exactly its permissions. A password is either a literal (`opswire up` writes
its generated ones into a config only its owner can read) or a reference to an
environment variable (`$OPSWIRE_NATS_GATEWAY_PASSWORD`, as `deploy/nats/*.conf`,
compose and k8s use), which nats-server substitutes at start-up.

    opswire nats-config > nats.conf     # the block with environment references
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from opswire.contract.subjects import Subjects
from opswire.runtime.permissions import ROLES, Permissions, Role, role_permissions

# Room for a 1 MiB frame plus what the gateway adds (the same in every shipped config).
MAX_PAYLOAD = "2MB"


def password_env(role: str) -> str:
    """The environment variable a shipped config reads a role's password from."""
    return f"OPSWIRE_NATS_{role.upper()}_PASSWORD"


def _value(password: str) -> str:
    # `$NAME` stays bare so nats-server substitutes it; anything else is a quoted literal.
    return password if password.startswith("$") else json.dumps(password)


def _subjects(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _permissions(perms: Permissions, indent: str) -> str:
    publish = f"allow: {_subjects(perms.publish_allow)}"
    if perms.publish_deny:
        publish += f", deny: {_subjects(perms.publish_deny)}"
    lines = [
        f"{indent}permissions: {{",
        f"{indent}  publish: {{ {publish} }}",
        f"{indent}  subscribe: {{ allow: {_subjects(perms.subscribe_allow)} }}",
    ]
    if perms.allow_responses:
        lines.append(f"{indent}  allow_responses: true")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def authorization_block(
    subjects: Subjects,
    passwords: Mapping[Role, str],
    extra_users: Mapping[str, str] | None = None,
) -> str:
    """`authorization { users = [...] }`: each role its permissions; `extra_users` (name →
    password) get no restrictions (the test suite's own client, an operator's admin)."""
    users = []
    for role in ROLES:
        users.append(
            "    {\n"
            f"      user: {json.dumps(role)}, password: {_value(passwords[role])}\n"
            f"{_permissions(role_permissions(role, subjects), '      ')}\n"
            "    }"
        )
    for name, password in (extra_users or {}).items():
        users.append(f"    {{ user: {json.dumps(name)}, password: {_value(password)} }}")
    return "authorization {\n  users = [\n" + ",\n".join(users) + "\n  ]\n}\n"


def env_passwords() -> dict[Role, str]:
    """Passwords as environment references, for configs that are shipped, not generated."""
    return {role: f"${password_env(role)}" for role in ROLES}


class AnyDeployment(Subjects):
    """Names of every deployment at once (prefix `*`, every stream `*`): a config that
    serves several single-token prefixes on one server, as the test suite's does."""

    def __init__(self) -> None:
        super().__init__(prefix="*", stream_prefix="*")

    metrics_stream = logs_stream = alerts_stream = events_stream = audit_stream = property(
        lambda self: "*"
    )
