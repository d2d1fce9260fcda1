"""The catalog's schema comes from Alembic, matches the models, and refuses revisions it does not know."""

from __future__ import annotations

import sqlite3

import pytest

from vidsearch.errors import ArchiveError
from vidsearch.store import Base, Catalog, head_revision


def test_migrations_create_exactly_the_models_schema(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.ensure_schema()
    with catalog.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_an_archive_of_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "catalog.sqlite"
    Catalog(path).ensure_schema()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(ArchiveError, match="made by a newer vidsearch"):
        Catalog(path).ensure_schema()


def test_reopening_keeps_rows(tmp_path):
    path = tmp_path / "catalog.sqlite"
    catalog = Catalog(path)
    catalog.ensure_schema()
    catalog.set_meta({"clip": "x"})
    catalog.close()
    reopened = Catalog(path)
    reopened.ensure_schema()
    assert reopened.get_meta("clip") == "x"
