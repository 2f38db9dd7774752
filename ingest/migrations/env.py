"""Alembic environment of the ingest schema; opswire.runtime.db runs it at start-up."""

from sqlmodel import SQLModel

import ingest.models  # noqa: F401 - registers the ingest tables on SQLModel.metadata
from opswire.runtime.db import run_migrations_online

run_migrations_online(SQLModel.metadata)
