"""Cameras end to end: ingest names them, the catalog keeps them (and an older archive gets them on upgrade),
hits and stats carry them."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from shared_files import VIDEOS, catalog_at_revision
from vidsearch.cli import cli

CLIP = VIDEOS / "unit" / "intel_asl_thanks.mkv"


def copy_clip(target):
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(CLIP, target)
    return target


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_ingest_names_cameras_and_hits_and_stats_carry_them(tmp_path, options):
    root = tmp_path / "footage"
    deep, direct = copy_clip(root / "cam3" / "2024" / "05" / "a.mkv"), copy_clip(root / "b.mkv")
    archive = tmp_path / "archive"
    flags = ["--index", str(archive), "--clip-model", options["clip_model"], "--clip-pretrained",
             options["clip_pretrained"], "--yolo-weights", options["yolo_weights"], "--device", "cpu"]
    runner = CliRunner()
    assert runner.invoke(cli, [*flags, "ingest", str(root), "--no-persons"]).exit_code == 0
    named = copy_clip(tmp_path / "elsewhere" / "named.mkv")
    assert runner.invoke(cli, [*flags, "ingest", str(named), "--camera", "gate", "--no-persons"]).exit_code == 0

    hits = _json(runner.invoke(cli, [*flags, "query", "a person", "--json", "-k", "50", "--no-group"]))["hits"]
    cameras = {hit["video"]: hit["camera"] for hit in hits}
    assert cameras == {str(deep): "cam3", str(direct): "footage", str(named): "gate"}
    stats = _json(runner.invoke(cli, [*flags, "stats", "--json"]))
    per_camera = {c["camera"]: c for c in stats["cameras"]}
    assert sorted(per_camera) == ["cam3", "footage", "gate"]
    # one 1.7 s clip each: 0.0005 h
    assert all(c["videos"] == 1 and c["vectors"] >= 1 and 0 < c["hours"] < 0.001 for c in per_camera.values())
    assert sum(c["vectors"] for c in per_camera.values()) == stats["frames"]  # --no-persons: frames only
    described = _json(runner.invoke(cli, [*flags, "describe", str(hits[0]["id"]), "--json"]))
    assert described["camera"] == cameras[described["video"]]


def test_upgrade_gives_videos_of_an_older_archive_the_default_camera_and_a_time_from_their_names(tmp_path):
    from vidsearch.archive import upgrade_archive
    from vidsearch.store import Catalog

    path = catalog_at_revision(
        tmp_path, "0003",
        "INSERT INTO videos (path, size, mtime_ns, status, indexed_at) VALUES "
        "('/footage/cam1/2024-05-01_14-00-00.mp4', 1, 1, 'indexed', 0), ('/footage/cam2/sub/clip.mp4', 1, 1, 'indexed', 0)",
    )
    upgrade_archive(tmp_path)
    catalog = Catalog(path)
    catalog.ensure_schema()
    origins = {str(v.path): v.origin for v in catalog.videos()}
    assert origins["/footage/cam1/2024-05-01_14-00-00.mp4"].camera == "cam1"
    assert origins["/footage/cam1/2024-05-01_14-00-00.mp4"].time_source == "name"
    assert origins["/footage/cam2/sub/clip.mp4"].camera == "cam2"
    assert origins["/footage/cam2/sub/clip.mp4"].start is None
    catalog.close()
