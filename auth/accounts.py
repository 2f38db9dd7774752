"""`opswire user create`: an account made directly in auth's database.

With `OPSWIRE_REGISTRATION=closed` this is how accounts come to be. The password is read
from `--password-file` or `OPSWIRE_USER_PASSWORD`, never from the command line (where
`ps` and shell history would show it) and never by prompting (scripts must not hang).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from auth.handlers.users import create_user
from auth.models import SCHEMA
from auth.passwords import Passwords
from auth.runtime import MIGRATIONS
from opswire.contract.resources import UserPublic, UserRegister
from opswire.runtime.db import create_engine, migrate, session_factory
from opswire.runtime.rpc import RpcError
from opswire.runtime.settings import DatabaseSettings, load_settings

PROGRAM = "opswire user"
PASSWORD_ENV = "OPSWIRE_USER_PASSWORD"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description="Manage accounts in auth's database (DATABASE_URL)."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser(
        "create",
        help="create an account (works while registration is closed)",
        description=f"Create an account. The password comes from --password-file or ${PASSWORD_ENV}.",
        epilog="environment variables: DATABASE_URL (auth's database, required), "
        f"{PASSWORD_ENV} (the password, when no --password-file is given)",
    )
    create.add_argument("--email", required=True, help="the account's e-mail address (its login)")
    create.add_argument("--full-name", default=None, help="shown in the dashboard (default: none)")
    create.add_argument(
        "--password-file",
        type=Path,
        default=None,
        help=f"file whose first line is the password (default: ${PASSWORD_ENV})",
    )
    return parser


def _password(path: Path | None) -> str:
    if path is not None:
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise SystemExit(f"{PROGRAM}: cannot read --password-file {path}: {exc.strerror}") from None
        return lines[0] if lines else ""
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        raise SystemExit(f"{PROGRAM}: give the password with --password-file or ${PASSWORD_ENV}")
    return password


def _request(args: argparse.Namespace) -> UserRegister:
    try:
        return UserRegister(
            email=args.email, password=_password(args.password_file), full_name=args.full_name
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise SystemExit(f"{PROGRAM}: {problems}") from None


async def create_account(settings: DatabaseSettings, request: UserRegister) -> UserPublic:
    """Bring auth's schema up to date (as the service does), then store the user."""
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        await migrate(engine, SCHEMA, MIGRATIONS)
        return await create_user(session_factory(engine), Passwords(), request)
    finally:
        await engine.dispose()


def main(argv: Sequence[str]) -> None:
    args = build_parser().parse_args(argv)
    request = _request(args)
    settings = load_settings(DatabaseSettings, PROGRAM)
    try:
        user = asyncio.run(create_account(settings, request))
    except RpcError as exc:
        raise SystemExit(f"{PROGRAM}: {exc.detail}") from None
    except (OSError, SQLAlchemyError) as exc:
        raise SystemExit(f"{PROGRAM}: cannot use the database: {exc.__class__.__name__}") from None
    sys.stdout.write(f"created user {user.email} ({user.id})\n")
