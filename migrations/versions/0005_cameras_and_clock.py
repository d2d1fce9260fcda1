"""Cameras and clock time: each video's camera, its start in UTC, where that start came from and the zone its
times are shown in.

Videos already indexed get the default camera rule over the folder that holds them all (the root they were most
likely ingested from) and a start from their names, read in the machine's zone; container metadata needs the
files, so a start from metadata comes when a video is indexed again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import os
from datetime import datetime, timezone
from pathlib import PurePath

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("camera", sa.String))
        batch.add_column(sa.Column("clock_start", sa.Float))
        batch.add_column(sa.Column("time_source", sa.String))
        batch.add_column(sa.Column("clock_zone", sa.String))
    op.create_index("ix_videos_camera", "videos", ["camera"])

    from vidsearch.cameras import camera_of
    from vidsearch.clock import machine_zone, time_from_name

    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, path, mtime_ns FROM videos")).all()
    if not rows:
        return
    paths = [PurePath(path) for _, path, _ in rows]
    root = PurePath(os.path.commonpath([str(p.parent) for p in paths]))
    zone = machine_zone()
    for (video_id, _, mtime_ns), path in zip(rows, paths):
        start = time_from_name(path, zone, written_before=datetime.fromtimestamp(mtime_ns / 1e9, timezone.utc))
        connection.execute(
            sa.text(
                "UPDATE videos SET camera = :camera, clock_start = :start, time_source = :source, clock_zone = :zone"
                " WHERE id = :id"
            ),
            {
                "camera": camera_of(path, [root]), "start": start.timestamp() if start else None,
                "source": "name" if start else "none", "zone": zone.key, "id": video_id,
            },
        )


def downgrade() -> None:
    op.drop_index("ix_videos_camera", "videos")
    with op.batch_alter_table("videos") as batch:
        for column in ("clock_zone", "time_source", "clock_start", "camera"):
            batch.drop_column(column)
