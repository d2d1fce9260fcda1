"""The catalog's schema comes from Alembic, matches the models, and refuses revisions it does not know."""

from __future__ import annotations

import sqlite3

import pytest

from shared_files import catalog_at_revision
from vidsearch.errors import ArchiveError
from vidsearch.store import Catalog, head_revision
from vidsearch.store.schema import Base, modelled


def test_migrations_create_exactly_the_models_schema(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.ensure_schema()
    with catalog.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        assert compare_metadata(MigrationContext.configure(conn, opts={"include_name": modelled}), Base.metadata) == []


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


def test_upgrade_from_the_first_revision_keeps_every_row(tmp_path):
    from vidsearch.archive import upgrade_archive

    path = catalog_at_revision(
        tmp_path, "0001",
        "INSERT INTO videos (id, path, size, mtime_ns, status, indexed_at) VALUES (1, '/v.mp4', 1, 1, 'indexed', 0)",
        "INSERT INTO frames VALUES (1, 1, 0, 0.0), (2, 1, 10, 1.0)",
        "INSERT INTO persons VALUES (3, 1, 'person', 0.9, 0, 0, 10, 20), (4, 2, 'person', 0.8, 1, 1, 11, 21)",
    )
    with pytest.raises(ArchiveError, match="run `vidsearch upgrade`"):
        Catalog(path).ensure_schema()
    assert upgrade_archive(tmp_path) == ("0001", head_revision())
    catalog = Catalog(path)
    catalog.ensure_schema()
    assert catalog.counts()["frames"] == 2 and catalog.counts()["persons"] == 2
    assert sorted(catalog.vector_ids("person").tolist()) == [3, 4]  # rows of 0001 were all embedded
    assert [track for _, track, _ in catalog.persons_of_video(1)] == [3, 4]
    # revision 0003 derives one appearance per track from the stored persons (their attributes come with a re-index)
    appearances = catalog.appearances_of_video(1)
    assert [(a.track, a.start, a.end, a.detections, a.best_person_id) for a in appearances] == [
        (3, 0.0, 0.0, 1, 3), (4, 1.0, 1.0, 1, 4)
    ]
    assert catalog.counts()["objects"] == 0


def test_upgrade_from_before_speech_keeps_every_row_and_indexes_new_transcripts(tmp_path):
    from vidsearch.archive import upgrade_archive

    path = catalog_at_revision(
        tmp_path, "0005",
        "INSERT INTO videos (id, path, size, mtime_ns, status, indexed_at, camera, time_source, clock_zone)"
        " VALUES (1, '/cam/v.mp4', 1, 1, 'indexed', 0, 'cam', 'none', 'UTC')",
        "INSERT INTO frames VALUES (1, 1, 0, 0.0), (2, 1, 10, 1.0)",
    )
    assert upgrade_archive(tmp_path) == ("0005", head_revision())
    catalog = Catalog(path)
    catalog.ensure_schema()
    assert catalog.counts()["frames"] == 2 and catalog.videos()[0].origin.camera == "cam"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("INSERT INTO speech_segments VALUES (1, 1, 2.0, 3.0, 'They parked by the gate.', 'en', -0.2, 0.01)")
        found = db.execute("SELECT rowid FROM speech_text WHERE speech_text MATCH 'park'").fetchall()
        db.execute("DELETE FROM videos WHERE id = 1")  # the cascade takes the transcript out of the index too
        gone = db.execute("SELECT rowid FROM speech_text WHERE speech_text MATCH 'park'").fetchall()
    assert found == [(1,)] and gone == []
