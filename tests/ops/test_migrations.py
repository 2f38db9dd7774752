"""The migrations match the models: for every service that owns tables (each folder with
`migrations/env.py`), its migrations applied to an empty PostgreSQL leave nothing for Alembic's
autogenerate to add, drop or alter against that service's SQLModel tables. Found by looking,
so a new service's or a new migration's drift is caught without touching this test."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlmodel import SQLModel

from opswire.runtime.db import create_engine, migrate
from tests.deploy.natsproc import REPO

SERVICES = sorted(path.parent.parent.name for path in REPO.glob("*/migrations/env.py"))


def test_every_service_that_owns_tables_is_checked() -> None:
    assert {"auth", "commands", "ingest"} <= set(SERVICES)


def _import_all(service: str) -> None:
    """Every module of the service, so tables declared outside `models.py` (e.g.
    `ingest/notify/models.py`) are in the metadata too; migrations are scripts, not models."""
    package = importlib.import_module(service)
    for module in pkgutil.walk_packages(package.__path__, f"{service}."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)


def _schema_of(service: str) -> str:
    """The one PostgreSQL schema the tables of `<service>.models` live in (DESIGN §6)."""
    _import_all(service)
    models = importlib.import_module(f"{service}.models")
    schemas = {
        value.__table__.schema
        for value in vars(models).values()
        if isinstance(value, type)
        and issubclass(value, SQLModel)
        and hasattr(value, "__table__")
        and value.__module__ == models.__name__
    }
    assert len(schemas) == 1 and None not in schemas, f"{service}: tables in {schemas}"
    return str(schemas.pop())


def _drift(connection: Connection, schema: str) -> list[Any]:
    def include_name(name: str | None, type_: str, _parent: Any) -> bool:
        return type_ != "schema" or name == schema

    def include_object(obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        if table is not None and getattr(table, "schema", schema) != schema:
            return False
        return not (type_ == "table" and name == "alembic_version")

    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": include_name,
            "include_object": include_object,
            "compare_type": True,
            "compare_server_default": False,
        },
    )
    return list(compare_metadata(context, SQLModel.metadata))


async def _migrated_drift(service: str, database_url: str, after: str | None = None) -> list[Any]:
    schema = _schema_of(service)
    migrations: Path = importlib.import_module(f"{service}.runtime").MIGRATIONS
    engine = create_engine(database_url)
    try:
        await migrate(engine, schema, migrations)
        async with engine.begin() as conn:
            if after is not None:
                await conn.execute(text(after.format(schema=schema)))
            return list(await conn.run_sync(_drift, schema))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_models(service: str, database_url: str) -> None:
    drift = await _migrated_drift(service, database_url)
    assert drift == [], f"{service}: the models differ from the migrations: {drift}"


async def test_the_comparison_sees_a_column_no_model_has(database_url: str) -> None:
    drift = await _migrated_drift(
        "ingest", database_url, after='ALTER TABLE "{schema}".alerts ADD COLUMN drift_probe integer'
    )
    assert [(d[0], d[2], d[3].name) for d in drift] == [("remove_column", "alerts", "drift_probe")]
