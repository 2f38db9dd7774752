"""The NATS identities of one machine: a password per role, generated once and kept.

`opswire up` keeps them under `<data dir>/credentials/` (the folder 0700, each file
0600) so a restart reuses them, and hands each child only its own role's file.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from opswire.runtime.permissions import ROLES, Role


@dataclass(frozen=True)
class Credentials:
    folder: Path
    passwords: dict[Role, str]

    def file(self, role: Role) -> Path:
        return self.folder / f"nats-{role}.password"

    def child_env(self, role: Role) -> dict[str, str]:
        """What a child process of `role` needs to connect as itself (no secret in the env)."""
        return {"OPSWIRE_NATS_USER": role, "OPSWIRE_NATS_PASSWORD_FILE": str(self.file(role).resolve())}


def load_or_create(folder: Path) -> Credentials:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    passwords: dict[Role, str] = {}
    for role in ROLES:
        path = folder / f"nats-{role}.password"
        if path.exists() and (kept := path.read_text().strip()):
            path.chmod(0o600)
            passwords[role] = kept
            continue
        password = secrets.token_urlsafe(32)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(password + "\n")
        passwords[role] = password
    return Credentials(folder, passwords)
