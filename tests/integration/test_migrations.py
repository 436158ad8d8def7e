"""Alembic stairway: every revision upgrades, downgrades and upgrades again, on both backends;
and the models agree with what the migrations build."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from db import migrate
from db.base import Base
from db.engine import create_engine


async def test_stairway(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        revisions = migrate.revisions()
        assert revisions, "no migrations found"
        previous = "base"
        for revision in revisions:
            await migrate.upgrade(engine, revision)
            assert await migrate.current(engine) == revision
            await migrate.downgrade(engine, previous)
            await migrate.upgrade(engine, revision)
            previous = revision
        await migrate.downgrade(engine, "base")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert set(tables) <= {"alembic_version"}
        await migrate.upgrade(engine, "head")
    finally:
        await engine.dispose()


async def test_models_match_migrations(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)

        def diff(connection: object) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": False})  # type: ignore[arg-type]
            return list(compare_metadata(context, Base.metadata))

        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
        assert differences == []
    finally:
        await engine.dispose()
