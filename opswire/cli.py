"""The `opswire` command: run one service, the whole stack (`up`), or an agent."""

from __future__ import annotations

import argparse
import importlib
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from opswire import __version__

SERVICES = ("gateway", "ingest", "commands", "auth")
# The settings class each service reads its environment with: its --help lists them.
SETTINGS = {
    "gateway": "gateway.settings:GatewaySettings",
    "ingest": "ingest.settings:IngestSettings",
    "commands": "commands.settings:CommandsSettings",
    "auth": "auth.settings:AuthSettings",
}


def _run_service(name: str) -> None:
    # Each service is its own package with a `main` module; the shared package
    # names them only here, as entry points, and never imports their internals.
    importlib.import_module(f"{name}.main").main()


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65_535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535 (0: any free port), not {port}")
    return port


def settings_class(service: str) -> Any:
    module, _, name = SETTINGS[service].partition(":")
    return getattr(importlib.import_module(module), name)


def env_names(cls: Any, field: str) -> list[str]:
    """The variables a settings field is read from, the preferred first (as in
    opswire.runtime.settings: the alias choices, else env_prefix + the field name)."""
    from pydantic import AliasChoices

    alias = cls.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{cls.model_config.get('env_prefix', '')}{field}".upper()]


def _default_text(info: Any) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None or default == [] or default == "":
        return "unset"
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)


def environment_help(cls: Any) -> str:
    """The epilog of a service's --help: every variable its settings class reads."""
    lines = ["environment variables (a bad value stops the service with a message naming it):"]
    for field, info in cls.model_fields.items():
        names = env_names(cls, field)
        title = names[0] + (f" (or {', '.join(names[1:])})" if names[1:] else "")
        text = f"{info.description + ' ' if info.description else ''}[default: {_default_text(info)}]"
        lines.append(f"  {title}")
        lines.extend(textwrap.wrap(text, width=76, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opswire", description=__doc__)
    parser.add_argument("--version", action="version", version=f"opswire {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SERVICES:
        sub.add_parser(
            name,
            help=f"run the {name} service (settings from the environment)",
            description=f"Run the {name} service against NATS_URL"
            + ("" if name == "gateway" else " and DATABASE_URL")
            + ".",
            epilog=environment_help(settings_class(name)),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    up = sub.add_parser(
        "up",
        help="run the whole stack on this machine",
        description="Run the whole stack on this machine: the four services, an embedded nats-server "
        "unless NATS_URL is set and an embedded PostgreSQL unless DATABASE_URL is set. Ready when it "
        "prints the URL; Ctrl-C or SIGTERM stops everything it started.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    up.add_argument("--host", default="127.0.0.1", help="address the gateway listens on")
    up.add_argument("--port", type=_port, default=8000, help="port of the gateway (0: any free port)")
    up.add_argument(
        "--data-dir",
        default=".opswire",
        help="where the embedded servers' data, the JWT secret and passwords are kept across restarts",
    )
    up.add_argument(
        "--demo", action="store_true", help="also run an agent for this machine, so metrics flow at once"
    )
    sub.add_parser("agent", help="run an agent (see `opswire agent --help`)", add_help=False)
    sub.add_parser(
        "user", help="create accounts in auth's database (see `opswire user --help`)", add_help=False
    )
    sub.add_parser("asyncapi", help="print the AsyncAPI document of the NATS subjects")
    nats_config = sub.add_parser(
        "nats-config",
        help="print a nats-server config rendered from the permission table",
        description="Print a complete nats-server config (listen, JetStream, one user per role with "
        "its permissions, passwords as $OPSWIRE_NATS_<ROLE>_PASSWORD references). "
        "deploy/nats/*.conf are this output.",
    )
    where = nats_config.add_mutually_exclusive_group()
    where.add_argument(
        "--cluster-node",
        type=int,
        choices=(1, 2, 3),
        help="node N (nats-N) of a 3-node cluster instead of a single server",
    )
    where.add_argument(
        "--k8s",
        action="store_true",
        help="the config shared by the pods of the Kubernetes StatefulSet `nats`",
    )
    nats_config.add_argument(
        "--subject-prefix",
        default="opswire",
        help="the services' OPSWIRE_SUBJECT_PREFIX (default: %(default)s)",
    )
    nats_config.add_argument(
        "--stream-prefix",
        default="OPSWIRE",
        help="the services' OPSWIRE_STREAM_PREFIX (default: %(default)s)",
    )
    return parser


def _nats_config(args: argparse.Namespace) -> str:
    from pydantic import ValidationError

    from opswire.contract.subjects import Subjects
    from opswire.runtime import natsconf
    from opswire.runtime.settings import CommonSettings

    try:
        # The same checks the services apply to these names.
        CommonSettings.model_validate(
            {"subject_prefix": args.subject_prefix, "stream_prefix": args.stream_prefix}
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        option = "--" + str(error["loc"][0]).replace("_", "-")
        raise SystemExit(f"opswire nats-config: {option}: {error['msg']}") from None
    subjects = Subjects(args.subject_prefix, args.stream_prefix)
    if args.cluster_node is not None:
        return natsconf.render_cluster_node(args.cluster_node, subjects)
    if args.k8s:
        return natsconf.render_k8s(subjects)
    return natsconf.render_single(subjects)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["agent"]:
        importlib.import_module("agent.main").main(argv[1:])
        return
    if argv[:1] == ["user"]:
        importlib.import_module("auth.accounts").main(argv[1:])
        return
    args = build_parser().parse_args(argv)
    if args.command in SERVICES:
        _run_service(args.command)
    elif args.command == "up":
        from opswire.launcher.up import run_up

        sys.exit(run_up(host=args.host, port=args.port, data_dir=args.data_dir, demo=args.demo))
    elif args.command == "asyncapi":
        from opswire.asyncapi import render

        print(render())
    elif args.command == "nats-config":
        sys.stdout.write(_nats_config(args))
