"""Parquet shards: every vector with what it means, one file per video, the source the index is rebuilt from."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .records import Item


@dataclass(frozen=True, slots=True)
class ShardVectors:
    ids: np.ndarray  # int64
    kinds: np.ndarray  # str: "frame" or "person"
    vectors: np.ndarray  # float32, n x dim


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a file renamed into it) to disk; Windows keeps them in its file system's journal
    and opens no folder as a file."""
    if os.name == "nt":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Shards:
    """A folder of `video-<id>.parquet` files; each is written whole, then renamed into place."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, video_id: int) -> Path:
        return self.folder / f"video-{video_id:09d}.parquet"

    def write(self, video_id: int, video_path: Path, items: list[Item], vectors: np.ndarray) -> None:
        self._replace(video_id, _table(video_id, video_path, items, vectors))

    def append(self, video_id: int, video_path: Path, items: list[Item], vectors: np.ndarray) -> None:
        """The video's shard written again with these vectors added (tracks of newly tracked classes)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not items:
            return
        existing = pq.read_table(self.path(video_id))
        added = _table(video_id, video_path, items, vectors).cast(existing.schema)
        self._replace(video_id, pa.concat_tables([existing, added]))

    def _replace(self, video_id: int, table) -> None:
        import pyarrow.parquet as pq

        target = self.path(video_id)
        partial = target.with_suffix(".parquet.partial")
        pq.write_table(table, partial)
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, target)
        sync_folder(self.folder)  # the rename itself is durable only once the folder's entry is on disk

    def read(self, video_ids: Iterable[int]) -> ShardVectors:
        import pyarrow.parquet as pq

        ids, kinds, vectors = [], [], []
        for video_id in video_ids:
            table = pq.read_table(self.path(video_id), columns=["id", "kind", "embedding"])
            embedding = table.column("embedding").combine_chunks()
            ids.append(table.column("id").to_numpy())
            kinds.append(table.column("kind").to_numpy(zero_copy_only=False).astype(str))
            vectors.append(embedding.flatten().to_numpy().reshape(len(table), embedding.type.list_size))
        if not ids:
            return ShardVectors(np.zeros(0, np.int64), np.zeros(0, str), np.zeros((0, 0), np.float32))
        return ShardVectors(np.concatenate(ids), np.concatenate(kinds), np.concatenate(vectors).astype(np.float32))

    def video_ids(self) -> set[int]:
        return {int(p.stem.split("-")[1]) for p in self.folder.glob("video-*.parquet")}

    def remove(self, video_ids: Iterable[int]) -> None:
        for video_id in video_ids:
            self.path(video_id).unlink(missing_ok=True)

    def sweep(self, keep: set[int]) -> None:
        """Delete what an interrupted ingest left: shards of uncommitted videos and half-written files."""
        self.remove(self.video_ids() - keep)
        for partial in self.folder.glob("*.partial"):
            partial.unlink()


def _table(video_id: int, video_path: Path, items: list[Item], vectors: np.ndarray):
    """Vectors with their meaning, as one shard stores them."""
    import pyarrow as pa

    dim = vectors.shape[1]
    boxes = [item.box for item in items]
    return pa.table(
        {
            "id": pa.array([item.vector_id for item in items], pa.int64()),
            "kind": pa.array([item.kind for item in items], pa.string()),
            "video_id": pa.array([video_id] * len(items), pa.int64()),
            "video": pa.array([str(video_path)] * len(items), pa.string()),
            "frame_index": pa.array([item.frame_index for item in items], pa.int32()),
            "t": pa.array([item.t for item in items], pa.float64()),
            **{
                side: pa.array([getattr(b, side) if b else None for b in boxes], pa.float32())
                for side in ("x1", "y1", "x2", "y2")
            },
            "detector_score": pa.array([item.detector_score for item in items], pa.float32()),
            "embedding": pa.FixedSizeListArray.from_arrays(
                pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1)), dim
            ),
        }
    )
