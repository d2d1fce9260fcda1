"""Which camera a video belongs to, and where and when it was recorded: the rules an ingest applies to each file.

Pure logic over paths, apart from the container tags that clock.read_start reads."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from zoneinfo import ZoneInfo

from .clock import read_start
from .errors import ConfigError
from .records import VideoOrigin


def camera_of(path: PurePath, roots: Sequence[PurePath], pattern: re.Pattern | None = None) -> str:
    """The camera a path belongs to: the `camera` group of the settings' pattern where it matches, else the first
    folder under the ingest root that holds it (the root's own name for a file directly in it)."""
    if pattern is not None:
        found = pattern.search(path.as_posix())
        if found and found["camera"]:
            return found["camera"]
    holding = [root for root in roots if path.is_relative_to(root) and path != root]
    if not holding:  # a file named on its own: its folder is its root
        return path.parent.name or path.parent.as_posix()
    root = max(holding, key=lambda r: len(r.parts))
    inside = path.relative_to(root).parts
    return inside[0] if len(inside) > 1 else (root.name or root.as_posix())


def camera_pattern(regex: str | None) -> re.Pattern | None:
    """The settings' cameras.pattern, checked: a regular expression with a group named `camera`."""
    if regex is None:
        return None
    try:
        compiled = re.compile(regex)
    except re.error as error:
        raise ConfigError(f"cameras.pattern {regex!r} is not a regular expression: {error}") from None
    if "camera" not in compiled.groupindex:
        raise ConfigError(f"cameras.pattern {regex!r} needs a named group (?P<camera>...)")
    return compiled


@dataclass(frozen=True, slots=True)
class OriginRules:
    """What one ingest call says about cameras and clocks: the roots it was given, a camera name for all, the
    settings' patterns, the zone local names are in, and whether a file's mtime may stand for its time."""

    roots: tuple[PurePath, ...]
    zone: ZoneInfo
    camera: str | None = None
    camera_pattern: re.Pattern | None = None
    clock_pattern: str | None = None
    use_mtime: bool = False
    use_overlay: bool = False  # a video with no time from its name or metadata reads the clock drawn on its picture

    @classmethod
    def for_paths(cls, paths: Sequence[Path], zone: ZoneInfo, **options) -> OriginRules:
        return cls(roots=tuple(PurePath(os.path.abspath(p)) for p in paths), zone=zone, **options)

    def origin(self, path: Path, mtime_ns: int, duration: float) -> VideoOrigin:
        reading = read_start(
            path, self.zone, mtime_ns=mtime_ns, duration=duration, use_mtime=self.use_mtime,
            user_pattern=self.clock_pattern,
        )
        camera = self.camera or camera_of(PurePath(path), self.roots, self.camera_pattern)
        start = reading.start.timestamp() if reading.start is not None else None
        return VideoOrigin(camera=camera, start=start, time_source=reading.source, zone=reading.zone)
