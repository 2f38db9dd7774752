"""Alembic environment of the auth service: runs on the connection opswire.runtime.db.migrate gives."""

from auth.models import METADATA
from opswire.runtime.db import run_migrations_online

run_migrations_online(METADATA)
