"""The real command line over the bad-input corpus (scripts/make_corpus.py): every file indexed or named once
with its reason, the rest indexed, a summary, failures in `stats`, and the documented exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared_files import REPO, footage_folder
from vidsearch import Archive
from vidsearch.progress import printable

SCRIPTS = REPO / "scripts"
NOT_VIDEO = "not a video file or unsupported container"
UNFINISHED = "an unfinished or truncated recording with no index (moov box)"
INDEXED = None
# what ingest must do with each corpus entry: index it, or report it with this reason
EXPECTED = {
    "good-short": INDEXED, "good-walk": INDEXED, "spaces": INDEXED, "unicode": INDEXED, "newline": INDEXED,
    "name-max": INDEXED, "folder-named-mp4": INDEXED, "theora": INDEXED, "faststart": INDEXED, "huge": INDEXED,
    "path-near-max": INDEXED,
    "empty": "empty file",
    "random": NOT_VIDEO,
    "text": NOT_VIDEO,
    "text-newline": NOT_VIDEO,
    "jpeg": "a still image (jpeg), not a video",
    "audio-only": "no video stream",
    # camera MP4s keep their index (moov) at the end: any cut loses it
    "truncated-mp4-1KiB": UNFINISHED, "truncated-mp4-10pct": UNFINISHED, "truncated-mp4-50pct": UNFINISHED,
    "truncated-mp4-90pct": UNFINISHED,
    # AVI, MKV and MP4 with the index first keep the frames before the cut
    "truncated-avi-1KiB": NOT_VIDEO, "truncated-avi-10pct": INDEXED, "truncated-avi-50pct": INDEXED,
    "truncated-avi-90pct": INDEXED,
    "truncated-mkv-1KiB": "no video frames", "truncated-mkv-10pct": INDEXED, "truncated-mkv-50pct": INDEXED,
    "truncated-mkv-90pct": INDEXED,
    "truncated-faststart-50pct": INDEXED, "truncated-faststart-90pct": INDEXED,
    "broken-symlink": "broken symbolic link",
    "symlink-loop": "too many levels of symbolic links",
    "fifo": "not a regular file",
    "socket": "not a regular file",
    # root reads a file of mode 000 all the same
    "no-permission": INDEXED if os.geteuid() == 0 else "permission denied",
    "non-utf8": "file name is not valid UTF-8: rename the file to index it",
    "path-over-max": "file name too long",
}
# entries the scan turns down before any decoding: they are looked at, and named, on every run
NOT_FILES = {"broken-symlink", "symlink-loop", "fifo", "socket", "non-utf8", "path-over-max"} | (
    set() if os.geteuid() == 0 else {"no-permission"}
)


def command(index: Path, options: dict, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "vidsearch", "--index", str(index), "--clip-model", options["clip_model"],
        "--clip-pretrained", options["clip_pretrained"], "--yolo-weights", options["yolo_weights"],
        "--device", "cpu", *args,
    ]


def shown(corpus: Path, entry: dict) -> str:
    """The entry's path as vidsearch stores and prints it (bytes that are not UTF-8 escaped)."""
    return os.fsencode(corpus / entry["path"]).decode("utf-8", "backslashreplace")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("corpus") / "footage"
    manifest = folder.with_suffix(".json")
    subprocess.run([sys.executable, SCRIPTS / "make_corpus.py", folder, "--manifest", manifest],
                   check=True, capture_output=True)
    return folder, json.loads(manifest.read_text())


def test_the_corpus_covers_every_case(corpus):
    _, entries = corpus
    assert sorted(entry["name"] for entry in entries) == sorted(EXPECTED)


def test_every_bad_file_is_named_once_and_the_rest_is_indexed(corpus, options, tmp_path):
    folder, entries = corpus
    index = tmp_path / "index"
    done = subprocess.run(command(index, options, "ingest", str(folder), "--fps", "0.5"),
                          capture_output=True, text=True)
    assert "Traceback" not in done.stderr
    assert done.returncode == 3, done.stderr  # some files failed, the rest is indexed

    failed = {entry["name"]: entry for entry in entries if EXPECTED[entry["name"]] is not INDEXED}
    indexed = {entry["name"]: entry for entry in entries if EXPECTED[entry["name"]] is INDEXED}
    lines = [line for line in done.stderr.splitlines() if line.startswith("vidsearch: skipped ")]
    assert sorted(lines) == sorted(
        f"vidsearch: skipped {printable(shown(folder, entry))}: {EXPECTED[name]}" for name, entry in failed.items()
    )
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"indexed {len(indexed)} videos (") and summary.endswith(f"{len(failed)} failed")

    with Archive.open(index, device="cpu") as archive:
        videos = {str(video.path): video for video in archive.catalog.videos()}
        for name, entry in indexed.items():
            video = videos[shown(folder, entry)]
            assert video.status == "indexed", name
            assert len(archive.catalog.vector_ids_of_video(video.id)["frame"]) >= 1, name
        for name, entry in failed.items():
            assert videos[shown(folder, entry)].error == EXPECTED[name], name

    stats = subprocess.run(command(index, options, "stats", "--json"), capture_output=True, text=True, check=True)
    listed = {f["path"]: f["reason"] for f in json.loads(stats.stdout)["failed"]}
    assert listed == {shown(folder, entry): EXPECTED[name] for name, entry in failed.items()}
    assert json.loads(stats.stdout)["videos"] == len(indexed)
    text = subprocess.run(command(index, options, "stats"), capture_output=True, text=True, check=True).stdout
    assert f"  {folder}/notes\\nmore notes.mp4: {NOT_VIDEO}" in text.splitlines()  # one line, escaped

    again = subprocess.run(command(index, options, "ingest", str(folder), "--fps", "0.5"),
                           capture_output=True, text=True)
    # nothing is decoded twice (a file that failed stays failed until it changes); what is not a file is named again
    summary = again.stdout.strip().splitlines()[-1]
    assert again.returncode == 3 and summary.startswith("indexed 0 videos")
    assert summary.endswith(f"{len(entries) - len(NOT_FILES)} unchanged, {len(NOT_FILES)} failed")
    assert len([line for line in again.stderr.splitlines() if line.startswith("vidsearch: skipped ")]) == len(NOT_FILES)


@pytest.mark.skipif(os.geteuid() != 0, reason="the corpus test above meets the unreadable file as the user it runs as")
def test_an_unreadable_file_is_named_when_ingest_runs_unprivileged(options, tmp_path):
    """Root reads a file of mode 000 all the same; without the capabilities that let it (as any other user runs),
    ingest names that file and indexes the rest."""
    folder = footage_folder(tmp_path / "footage", "unit/intel_asl_thanks.mkv", "unit/intel_asl_walk.mkv")
    locked = folder / "unit/intel_asl_walk.mkv"
    locked.chmod(0)
    unprivileged = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    done = subprocess.run(unprivileged + command(tmp_path / "index", options, "ingest", str(folder)),
                          capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert f"vidsearch: skipped {locked}: permission denied" in done.stderr.splitlines()
    assert done.stdout.strip().splitlines()[-1].startswith("indexed 1 videos")
