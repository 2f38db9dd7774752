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

    metrics_stream = logs_stream = alerts_stream = events_stream = audit_stream = property(lambda self: "*")


# --- complete server configs (`opswire nats-config`, deploy/nats/*.conf, k8s) -------------

CLIENT_PORT = 4222
ROUTE_PORT = 6222
MONITOR_PORT = 8222
CLUSTER_NAME = "opswire"
CLUSTER_NODES = 3
ROUTE_USER = "route"
ROUTE_PASSWORD_ENV = "OPSWIRE_NATS_ROUTE_PASSWORD"
STORE_DIR = "/data"
MAX_FILE_STORE = "20GB"
TLS_DIR = "/etc/nats/tls"


def route_url_env(node: int) -> str:
    """The variable holding the whole route URL (credentials included) of cluster node `node`.

    nats-server takes a route's credentials only from its URL and substitutes no variable
    inside a URL (quoted or not), so the URL itself is the variable:
    `OPSWIRE_NATS_ROUTE_URL_2=nats-route://route:<route password>@nats-2:6222`.
    """
    return f"OPSWIRE_NATS_ROUTE_URL_{node}"


def command_line(subjects: Subjects, *flags: str) -> str:
    """The `opswire nats-config` invocation that renders a config for `subjects`."""
    words = ["opswire", "nats-config", *flags]
    default = Subjects()
    if subjects.prefix != default.prefix:
        words += ["--subject-prefix", subjects.prefix]
    if subjects.stream_prefix != default.stream_prefix:
        words += ["--stream-prefix", subjects.stream_prefix]
    return " ".join(words)


def _header(what: str, command: str, extra_env: list[str]) -> str:
    lines = [
        f"# nats-server config for opswire: {what}.",
        "# GENERATED from the permission table (opswire/runtime/permissions.py): do not edit by",
        "# hand (tests/deploy checks this file equals the generator's output). Regenerate with",
        f"#   {command} > <this file>",
        "#",
        "# nats-server reads the secrets from its environment when it starts, a password per role:",
        *[f"#   {password_env(role)}" for role in ROLES],
        *[f"#   {line}" for line in extra_env],
        "# nats-server parses a variable's value as a config value, so a password must be letters",
        "# and digits starting with a letter (`12345`, `true` or `-x…` would not be strings), e.g.",
        "#   python3 -c 'import secrets; print(\"p\" + secrets.token_hex(32))'",
        "# See docs/security.md.",
        "",
    ]
    return "\n".join(lines) + "\n"


def _server(server_name: str | None) -> str:
    lines = [f"server_name: {server_name}"] if server_name else []
    lines += [
        f'listen: "0.0.0.0:{CLIENT_PORT}"',
        "# Monitoring (/healthz, /varz, /routez) answers on localhost only: never publish it.",
        f'http: "127.0.0.1:{MONITOR_PORT}"',
        "# Room for the gateway's 1 MiB frame plus server_id and received_at.",
        f"max_payload: {MAX_PAYLOAD}",
        "jetstream {",
        f'  store_dir: "{STORE_DIR}"',
        f"  max_file_store: {MAX_FILE_STORE}",
        "}",
        "",
        "# TLS for clients: uncomment, mount the files, and connect with tls:// URLs",
        "# (services: NATS_URL=tls://…, OPSWIRE_NATS_TLS_CA_FILE=<ca.pem>). docs/security.md",
        "# shows how to make a CA and a server certificate with openssl.",
        "# tls {",
        f'#   cert_file: "{TLS_DIR}/server.pem"',
        f'#   key_file: "{TLS_DIR}/server-key.pem"',
        f'#   ca_file: "{TLS_DIR}/ca.pem"',
        "#   # Also require client certificates signed by ca_file (services then set",
        "#   # OPSWIRE_NATS_TLS_CERT_FILE / OPSWIRE_NATS_TLS_KEY_FILE):",
        "#   # verify: true",
        "#   timeout: 2",
        "# }",
        "",
    ]
    return "\n".join(lines) + "\n"


def _cluster(route_nodes: list[int]) -> str:
    lines = [
        "",
        "cluster {",
        f"  name: {CLUSTER_NAME}",
        f'  listen: "0.0.0.0:{ROUTE_PORT}"',
        "  # Only servers that know the route password may join.",
        f"  authorization {{ user: {ROUTE_USER}, password: ${ROUTE_PASSWORD_ENV} }}",
        "  # Each route is a whole variable: nats-server takes route credentials only from the URL",
        "  # and substitutes no variable inside one, e.g.",
        f"  #   {route_url_env(route_nodes[0])}=nats-route://{ROUTE_USER}:<password>@<host>:{ROUTE_PORT}",
        "  routes = [",
        *[f"    ${route_url_env(n)}" for n in route_nodes],
        "  ]",
        "  # TLS between the servers (mutual: each presents a certificate signed by ca_file).",
        "  # Uncomment to encrypt and authenticate the routes; route URLs stay nats-route://.",
        "  # tls {",
        f'  #   cert_file: "{TLS_DIR}/route.pem"',
        f'  #   key_file: "{TLS_DIR}/route-key.pem"',
        f'  #   ca_file: "{TLS_DIR}/ca.pem"',
        "  #   verify: true",
        "  #   timeout: 2",
        "  # }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _route_env_notes(nodes: list[int], host: str) -> list[str]:
    return [
        f"{ROUTE_PASSWORD_ENV} (the same on every node), and the route URLs:",
        *[
            f"{route_url_env(n)}=nats-route://{ROUTE_USER}:${ROUTE_PASSWORD_ENV}@{host.format(n=n)}:{ROUTE_PORT}"
            for n in nodes
        ],
    ]


def render_single(subjects: Subjects | None = None) -> str:
    """One nats-server with JetStream (compose, a single host): deploy/nats/single.conf."""
    subjects = subjects or Subjects()
    return (
        _header("one server with JetStream", command_line(subjects), [])
        + _server(None)
        + authorization_block(subjects, env_passwords())
    )


def render_cluster_node(node: int, subjects: Subjects | None = None, nodes: int = CLUSTER_NODES) -> str:
    """Node `node` (1-based) of a JetStream cluster of servers `nats-1` … `nats-<nodes>`."""
    if not 1 <= node <= nodes:
        raise ValueError(f"cluster node must be 1-{nodes}, not {node}")
    subjects = subjects or Subjects()
    others = [n for n in range(1, nodes + 1) if n != node]
    return (
        _header(
            f"node {node} (nats-{node}) of a {nodes}-node JetStream cluster (streams may use 3 replicas)",
            command_line(subjects, "--cluster-node", str(node)),
            _route_env_notes(others, "nats-{n}"),
        )
        + _server(f"nats-{node}")
        + authorization_block(subjects, env_passwords())
        + _cluster(others)
    )


def render_k8s(subjects: Subjects | None = None, replicas: int = CLUSTER_NODES) -> str:
    """The config every pod of the `nats` StatefulSet shares (pods nats-0 … nats-<replicas-1>
    behind the headless Service `nats`): its name from `$POD_NAME`, routes to every pod
    (nats-server ignores the route to itself)."""
    subjects = subjects or Subjects()
    pods = list(range(replicas))
    return (
        _header(
            f"the {replicas} pods of the Kubernetes StatefulSet `nats`",
            command_line(subjects, "--k8s"),
            ["POD_NAME (the pod's name, from the downward API)", *_route_env_notes(pods, "nats-{n}.nats")],
        )
        + _server("$POD_NAME")
        + authorization_block(subjects, env_passwords())
        + _cluster(pods)
    )
