"""The `opswire` command: run one service, the whole stack (`up`), or an agent."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

SERVICES = ("gateway", "ingest", "commands", "auth")


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opswire", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SERVICES:
        sub.add_parser(name, help=f"run the {name} service (settings from the environment)")
    up = sub.add_parser("up", help="run the whole stack on this machine")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=_port, default=8000)
    up.add_argument("--data-dir", default=".opswire")
    up.add_argument("--demo", action="store_true", help="also run an agent for this machine")
    sub.add_parser("agent", help="run an agent (see `opswire agent --help`)", add_help=False)
    sub.add_parser("asyncapi", help="print the AsyncAPI document of the NATS subjects")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["agent"]:
        importlib.import_module("agent.main").main(argv[1:])
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
