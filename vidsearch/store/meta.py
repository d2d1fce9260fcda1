"""The catalog's meta table: the keys of its rows, and the counters every write shares (vector ids, generation)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection

from .schema import meta_t

NEXT_ID = "next_vector_id"
NEXT_VIDEO_ID = "next_video_id"
GENERATION = "generation"  # counts the commits that changed which videos (and so which vectors) the catalog holds
MODEL_KEY = "clip"  # the meta row naming the embedding model of the archive's vectors


def new_vector_ids(conn: Connection, count: int) -> np.ndarray:
    """`count` vector ids never given before, in order."""
    first = int(conn.scalar(select(meta_t.c.value).where(meta_t.c.key == NEXT_ID)) or 1)
    upsert_meta(conn, NEXT_ID, str(first + count))
    return np.arange(first, first + count, dtype=np.int64)


def bump_generation(conn: Connection) -> None:
    current = int(conn.scalar(select(meta_t.c.value).where(meta_t.c.key == GENERATION)) or 0)
    upsert_meta(conn, GENERATION, str(current + 1))


def upsert_meta(conn: Connection, key: str, value: str) -> None:
    from sqlalchemy.dialects.sqlite import insert

    statement = insert(meta_t).values(key=key, value=value)
    conn.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": value}))
