"""Text on screen in the catalog: rows of the screen_texts table from a video's text spans, and the spans whose folded
text holds a query's, exactly or within a few edits, found through the FTS5 trigram index."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..records import Box, Detection, ScreenText, StoredScreenText, TextReading
from ..screen_text.fold import edits_to_fit, fold

# a fuzzy search scores at most this many candidates that share a three-character piece with the query
_FUZZY_CANDIDATES = 2000


def screen_text_rows(video_id: int, frame_ids: np.ndarray, texts: Sequence[ScreenText]) -> list[dict]:
    rows = []
    for span in texts:
        reading, within = span.best, span.best.within
        rows.append({
            "video_id": video_id, "frame_id": int(frame_ids[span.frame_position]), "start": span.start,
            "end": span.end, "frames": span.frames, "text": reading.text, "folded": fold(reading.text),
            "confidence": reading.confidence, **dict(zip(("x1", "y1", "x2", "y2"), reading.box.as_list())),
            "within_label": within.label if within else None, "within_score": within.score if within else None,
            **{
                f"within_{name}": value
                for name, value in zip(("x1", "y1", "x2", "y2"), within.box.as_list() if within else [None] * 4)
            },
        })
    return rows


# a text read inside a tracked vehicle's box belongs to that vehicle's appearance: the detection it was read in is
# the tracked one of the same frame, class and box
_SELECT = (
    "SELECT s.*, f.frame_index, f.t, v.path, a.id AS appearance_id FROM screen_texts s"
    " JOIN frames f ON f.id = s.frame_id JOIN videos v ON v.id = s.video_id"
    " LEFT JOIN persons p ON p.frame_id = s.frame_id AND p.label = s.within_label AND p.x1 = s.within_x1"
    " AND p.y1 = s.within_y1 AND p.x2 = s.within_x2 AND p.y2 = s.within_y2"
    " LEFT JOIN appearances a ON a.video_id = s.video_id AND a.track = p.track"
)


def find_screen_texts(conn: Connection, query: str, max_edits: int) -> list[tuple[StoredScreenText, int]]:
    """The text spans whose folded text holds the folded query with at most `max_edits` edits, each with its
    edits, fewest first."""
    wanted = fold(query)
    if not wanted:
        return []
    if len(wanted) < 3:  # shorter than a trigram: the index cannot help
        rows = conn.execute(text(f"{_SELECT} WHERE s.folded LIKE :like"), {"like": f"%{wanted}%"}).mappings()
        return [(_stored(row), 0) for row in rows]
    phrase = '"' + wanted.replace('"', '""') + '"'
    found = {row["id"]: (_stored(row), 0) for row in _matching(conn, phrase)}
    if max_edits:
        pieces = sorted({wanted[i : i + 3] for i in range(len(wanted) - 2)})
        anywhere = " OR ".join('"' + piece.replace('"', '""') + '"' for piece in pieces)
        for row in _matching(conn, anywhere, _FUZZY_CANDIDATES):
            if row["id"] not in found and (edits := edits_to_fit(wanted, row["folded"])) <= max_edits:
                found[row["id"]] = (_stored(row), edits)
    return sorted(found.values(), key=lambda pair: pair[1])


def _matching(conn: Connection, match: str, limit: int = -1):
    return conn.execute(
        text(
            f"{_SELECT} WHERE s.id IN (SELECT rowid FROM screen_texts_fts WHERE screen_texts_fts MATCH :match"
            " ORDER BY rank LIMIT :limit)"
        ),
        {"match": match, "limit": limit},
    ).mappings()


def _stored(row) -> StoredScreenText:
    within = None
    if row["within_label"] is not None:
        box = Box(row["within_x1"], row["within_y1"], row["within_x2"], row["within_y2"])
        within = Detection(box=box, score=row["within_score"], label=row["within_label"])
    reading = TextReading(
        box=Box(row["x1"], row["y1"], row["x2"], row["y2"]), text=row["text"], confidence=row["confidence"],
        within=within,
    )
    return StoredScreenText(
        id=row["id"], video_id=row["video_id"], video=Path(row["path"]), frame_id=row["frame_id"],
        frame_index=row["frame_index"], t=row["t"],
        start=row["start"], end=row["end"], frames=row["frames"], folded=row["folded"], reading=reading,
        appearance=row["appearance_id"],
    )
