"""Walk the paths a user names and list the video files in them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .records import VideoFile

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .qt .avi .mkv .webm .mpg .mpeg .m2v .ts .mts .m2ts .wmv .asf .flv .3gp .3g2 .ogv .ogg "
    ".mxf .dv .vob .y4m .h264 .h265 .hevc".split()
)


@dataclass(frozen=True, slots=True)
class ScanProblem:
    """A path that could not be looked at; the scan goes on without it."""

    path: Path
    reason: str


def scan(paths: Iterable[Path]) -> Iterator[VideoFile | ScanProblem]:
    """Files named directly are taken whatever their extension; folders are walked for video extensions."""
    for path in paths:
        path = Path(os.path.abspath(path))
        try:
            is_folder = path.is_dir()
        except OSError as error:  # a path too long for the system, say
            yield _problem(path, _reason(error))
            continue
        if is_folder:
            yield from _walk(path)
        else:
            yield _stat(path)


def _walk(folder: Path) -> Iterator[VideoFile | ScanProblem]:
    problems: list[ScanProblem] = []

    def on_error(error: OSError) -> None:
        problems.append(_problem(Path(error.filename), _reason(error)))

    for root, dirs, files in os.walk(folder, onerror=on_error):
        dirs.sort()
        for name in sorted(files):
            if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                yield _stat(Path(root) / name)
        yield from problems
        problems.clear()


def _stat(path: Path) -> VideoFile | ScanProblem:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return _problem(path, "file name is not valid UTF-8: rename the file to index it")
    try:
        st = path.stat()
    except FileNotFoundError:
        return _problem(path, "broken symbolic link" if path.is_symlink() else "no such file or folder")
    except OSError as error:
        return _problem(path, _reason(error))
    if not path.is_file():
        return _problem(path, "not a regular file")
    if not os.access(path, os.R_OK):
        return _problem(path, "permission denied")
    return VideoFile(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _problem(path: Path, reason: str) -> ScanProblem:
    # the catalog keeps paths as UTF-8 text: bytes of a name that are not UTF-8 are kept escaped
    return ScanProblem(Path(os.fsencode(path).decode("utf-8", "backslashreplace")), reason)


def _reason(error: OSError) -> str:
    return error.strerror.lower() if error.strerror else str(error)


def content_fingerprint(path: Path, sample_bytes: int = 1 << 20) -> str:
    """A cheap identity of a file's content: its size and three sampled blocks.

    Hashing whole camera files would cost as much as decoding them; this tells a touched file from a
    changed one, which is what incremental ingest needs.
    """
    import hashlib

    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for offset in sorted({0, max(0, size // 2 - sample_bytes // 2), max(0, size - sample_bytes)}):
            f.seek(offset)
            digest.update(f.read(sample_bytes))
    return f"sampled-sha256:{digest.hexdigest()}"
