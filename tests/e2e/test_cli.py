"""The command line: exit codes, JSON contracts, and effects checked through the Python API (that importing it
and its help load no model library is in tests/unit/test_light_imports.py)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from shared_files import VIDEOS, footage_folder, global_options
from vidsearch import Archive
from vidsearch.cli import cli


def test_ingest_query_stats_eval(tmp_path, options):
    root = footage_folder(tmp_path / "footage", "unit/intel_asl_walk.mkv")
    (root / "zero.mp4").touch()
    (root / "notes.mp4").write_text("meeting notes, not a video\n")
    archive = tmp_path / "archive"
    runner = CliRunner()
    base = global_options(archive, options)

    result = runner.invoke(cli, [*base, "ingest", str(root)])
    assert result.exit_code == 3, result.output  # some files failed, the rest is indexed
    lines = [line for line in result.stderr.splitlines() if line.startswith("vidsearch: skipped")]
    assert sorted(lines) == [
        f"vidsearch: skipped {root / 'notes.mp4'}: not a video file or unsupported container",
        f"vidsearch: skipped {root / 'zero.mp4'}: empty file",
    ]
    assert "Traceback" not in result.output
    assert "indexed 1 videos" in result.stdout

    result = runner.invoke(cli, [*base, "query", "a woman in a yellow hoodie", "-k", "3", "--no-group", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["query"] == "a woman in a yellow hoodie"
    assert [h["rank"] for h in payload["hits"]] == [1, 2, 3]
    for hit in payload["hits"]:
        assert hit["video"] == str(root / "unit/intel_asl_walk.mkv")
        assert (hit["box"] is None) == (hit["kind"] == "frame")
    result = runner.invoke(cli, [*base, "query", "a woman", "--kind", "person", "--json"])
    [person] = json.loads(result.stdout)["hits"]  # one signer, one track, one embedded crop
    assert person["kind"] == "person" and len(person["box"]) == 4
    assert person["start"] <= person["t"] <= person["end"] and "appearance" in person
    like = [*base, "query", "--like", str(person["id"]), "--json"]
    result = runner.invoke(cli, [*like, "--min-score", "0.5", "--no-group"])
    similar = json.loads(result.stdout)
    assert similar["query"] == {"like": person["id"]}
    assert similar["hits"] and all(h["score"] >= 0.5 and h["id"] != person["id"] for h in similar["hits"])
    # grouped, "more like this" is elsewhere: not the person's own appearance, nor the moment they are in
    elsewhere = json.loads(runner.invoke(cli, like).stdout)["hits"]
    assert all(h.get("appearance") != person["appearance"] for h in elsewhere)
    assert not any(h["kind"] == "frame" and h["start"] <= person["t"] <= h["end"] for h in elsewhere)
    result = runner.invoke(cli, [*base, "query", "x", "--like", "1"])
    assert result.exit_code == 2 and "give one of TEXT, --image, --like" in result.output

    result = runner.invoke(cli, [*base, "stats", "--json"])
    stats = json.loads(result.stdout)
    with Archive.open(archive, **options) as opened:
        expected = opened.stats()
    assert (stats["videos"], stats["frames"], stats["persons"]) == (1, expected.frames, expected.persons)
    assert sorted(f["reason"] != "" for f in stats["failed"]) == [True, True]

    manifest = tmp_path / "set.json"
    manifest.write_text(json.dumps({"name": "tiny", "version": 1, "tolerance_s": 0.5, "queries": [
        {"id": "q1", "text": "a person signing", "target": "any",
         "relevant": [{"video": "unit/intel_asl_walk.mkv", "intervals": [[0.0, 3.0]]}]}]}))
    result = runner.invoke(cli, [*base, "eval", str(manifest), "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    # every hit of this one-video archive lies in the relevant interval, so the arithmetic is exact
    assert (report["recall@1"], report["recall@10"], report["mrr"]) == (1.0, 1.0, 1.0)
    assert report["not_indexed"] == []
    assert {mode: m["recall@1"] for mode, m in report["modes"].items()} == {"frames": 1.0, "persons": 1.0, "fused": 1.0}
    assert "  persons" in runner.invoke(cli, [*base, "eval", str(manifest), "--root", str(root)]).stdout


def test_bad_options_get_one_line_not_a_traceback(tmp_path, options):
    runner = CliRunner()
    base = global_options(tmp_path / "archive", options)
    result = runner.invoke(cli, [*base, "ingest", str(VIDEOS / "unit"), "--fps", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = runner.invoke(cli, ["--index", str(tmp_path / "a"), "--clip-model", "no-such-model", "query", "x"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: unknown open_clip model 'no-such-model'")
    missing = str(tmp_path / "missing.pt")
    result = runner.invoke(cli, [*base[:4], "--clip-pretrained", missing, "query", "x"])
    assert result.exit_code == 1 and f"CLIP weights file not found: {missing}" in result.output


def test_ingest_json_prints_one_event_per_line(tmp_path, options):
    root = footage_folder(tmp_path / "footage", "unit/intel_asl_thanks.mkv")
    (root / "broken.mp4").write_bytes(b"not a video at all")
    result = CliRunner().invoke(cli, [*global_options(tmp_path / "archive", options), "ingest", str(root), "--json"])
    assert result.exit_code == 3, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0] == {"event": "planned", "videos": 2}
    assert {e["event"] for e in events} == {"planned", "frames", "indexed", "failed", "done"}
    [failed] = [e for e in events if e["event"] == "failed"]
    assert failed["path"].endswith("broken.mp4") and failed["reason"]
    done = events[-1]
    assert done["event"] == "done" and done["indexed"] == 1
    assert sum(e["count"] for e in events if e["event"] == "frames") == done["frames"] + done["frames_skipped"]
