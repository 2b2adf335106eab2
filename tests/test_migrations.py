"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from authhooks.storage.database import Database
from authhooks.storage.models import Base
from tests.conftest import postgres_schema


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[Database]:
    if backend == "postgresql":
        with postgres_schema() as url:
            database = Database(url)
            yield database
            database.dispose()
    else:
        database = Database(f"sqlite:///{tmp_path / 'schema.db'}")
        yield database
        database.dispose()


def test_migrations_match_the_models(database: Database) -> None:
    database.migrate()
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
