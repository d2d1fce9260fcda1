"""Clock time: when a video started, read from its name, its container's metadata or its file time; local times
to UTC through IANA zones (daylight-saving gaps and repeats included); the clock filters' own syntax.

Pure functions over strings, numbers and zones, apart from reading a container's tags (PyAV, lazily)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePath
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

UTC = timezone.utc
# in the order they are tried; mtime and overlay only where asked
TIME_SOURCES = ("name", "metadata", "mtime", "overlay", "none")
_EARLIEST_YEAR = 1971  # containers write 1970 or 1904 for "never set"


@dataclass(frozen=True, slots=True)
class NamePattern:
    """A way recorders and cameras put a start time into a file name or path."""

    name: str
    regex: re.Pattern  # named groups year, month, day, hour, minute, second; optional offset
    whole_path: bool  # matched against the path's end (folders carry part of the time), else the file name
    utc: bool  # the writer uses UTC, whatever the local zone
    example: str  # a real name of this style, as its writer makes it
    source: str  # who writes it


def _pattern(name, regex, example, source, whole_path=False, utc=False) -> NamePattern:
    return NamePattern(name, re.compile(regex), whole_path, utc, example, source)


_D8 = r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})"
_T6 = r"(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})"

# most specific first: a path layout before a bare date in the name, a name with its offset before one without
NAME_PATTERNS: tuple[NamePattern, ...] = (
    _pattern(
        "frigate", r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})/(?P<hour>\d{2})/[^/]+/"
                   r"(?P<minute>\d{2})\.(?P<second>\d{2})\.mp4$",
        "recordings/2024-05-01/14/front_door/05.30.mp4",
        "Frigate's recordings folder (UTC): YYYY-MM-DD/HH/<camera>/MM.SS.mp4", whole_path=True, utc=True,
    ),
    _pattern(
        "dahua", r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})/\d+/dav/\d{2}/"
                 r"(?P<hour>\d{2})\.(?P<minute>\d{2})\.(?P<second>\d{2})-\d{2}\.\d{2}\.\d{2}[^/]*$",
        "2024-05-01/001/dav/14/14.00.00-14.15.00[M][0@0][0].mp4",
        "Dahua and Amcrest SD cards and FTP: YYYY-MM-DD/001/dav/HH/HH.MM.SS-HH.MM.SS[...]", whole_path=True,
    ),
    _pattern(
        "motion", r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})/"
                  r"(?P<hour>\d{2})-(?P<minute>\d{2})-(?P<second>\d{2})\.[^/]+$",
        "2024-05-01/14-00-00.mp4", "motionEye and Motion's default movie path: YYYY-MM-DD/HH-MM-SS",
        whole_path=True,
    ),
    _pattern(
        "iso8601", r"(?P<year>\d{4})-?(?P<month>\d{2})-?(?P<day>\d{2})T(?P<hour>\d{2}):?(?P<minute>\d{2}):?"
                   r"(?P<second>\d{2})(?:[.,]\d+)?(?P<offset>Z|[+-]\d{2}:?\d{2})?",
        "2024-05-01T14:00:00+02:00.mp4", "ISO 8601, extended or basic (20240501T140000Z), with or without offset",
    ),
    _pattern(
        "dashed", r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[_ T](?P<hour>\d{2})-(?P<minute>\d{2})-"
                  r"(?P<second>\d{2})",
        "2024-05-01_14-00-00.mp4", "YYYY-MM-DD_HH-MM-SS: vidsearch record; OBS writes a space instead of _",
    ),
    _pattern(
        "dashcam", r"(?<!\d)(?P<year>\d{4})_(?P<month>\d{2})(?P<day>\d{2})_" + _T6 + r"(?!\d)",
        "2024_0501_140000_F.MP4", "Viofo and other Novatek dashcams: YYYY_MMDD_HHMMSS_F/R",
    ),
    _pattern(
        "date_time", r"(?<!\d)" + _D8 + r"[_-]" + _T6 + r"(?!\d)",
        "VID_20240501_140000.mp4",
        "YYYYMMDD_HHMMSS: Android phones (VID_...), Reolink (RecM01_...), Blue Iris (Cam1.YYYYMMDD_HHMMSS), "
        "Synology Surveillance Station and ffmpeg's %Y%m%d-%H%M%S (- between)",
    ),
    _pattern(
        "digits", r"(?<!\d)" + _D8 + _T6 + r"(?:\d{3})?(?!\d)",
        "192.168.1.64_01_20240501140000123.mp4",
        "YYYYMMDDHHMMSS, optionally with milliseconds: Hikvision downloads, DJI (DJI_YYYYMMDDHHMMSS_0001), "
        "Reolink FTP uploads",
    ),
)


@dataclass(frozen=True, slots=True)
class ClockReading:
    """A video's start in UTC (None when unknown), where it came from, and the zone its times are shown in."""

    start: datetime | None
    source: str  # one of TIME_SOURCES
    zone: str


def zone_named(name: str | None) -> ZoneInfo:
    """An IANA zone ("Europe/Berlin"); None: the machine's zone."""
    if name is None:
        return machine_zone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}: give an IANA name such as Europe/Berlin or UTC") from None


def machine_zone() -> ZoneInfo:
    """The machine's IANA zone: $TZ, else the zone /etc/localtime links to, else UTC."""
    for candidate in (os.environ.get("TZ", "").lstrip(":"), _linked_zone()):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _linked_zone() -> str | None:
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return None
    return target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else None


def to_utc(local: datetime, zone: ZoneInfo, written_before: datetime | None = None) -> datetime:
    """A wall-clock time in `zone` as UTC.

    A time the clock skipped (spring forward) is read with the offset before the change, as a clock not yet moved
    would have written it. A time the clock showed twice (fall back) is the last occurrence not after
    `written_before` (the file's modification time: a segment is written after it starts), else the first.
    """
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    repeated = first != second and all(
        moment.astimezone(zone).replace(tzinfo=None) == local for moment in (first, second)
    )
    if repeated and written_before is not None and second <= written_before:
        return second
    return first


def user_name_pattern(regex: str) -> NamePattern:
    """The settings' own pattern (clock.pattern), searched in the whole path before the built-in ones."""
    try:
        return _pattern("user", regex, "", "settings", whole_path=True)
    except re.error as error:
        raise ConfigError(f"clock.pattern {regex!r} is not a regular expression: {error}") from None


def time_from_name(
    path: PurePath, zone: ZoneInfo, user_pattern: str | None = None, written_before: datetime | None = None
) -> datetime | None:
    """The start time a path's name (or folders) carries, in UTC; None when no pattern gives a valid time."""
    patterns = [user_name_pattern(user_pattern)] if user_pattern else []
    for pattern in patterns + list(NAME_PATTERNS):
        text = path.as_posix() if pattern.whole_path else path.name
        for found in pattern.regex.finditer(text):
            moment = _moment(found, zone, pattern.utc, written_before)
            if moment is not None:
                return moment
    return None


def _moment(found: re.Match, zone: ZoneInfo, utc: bool, written_before: datetime | None) -> datetime | None:
    try:
        local = datetime(*(int(found[g]) for g in ("year", "month", "day", "hour", "minute", "second")))
    except (ValueError, IndexError):  # 20241350_...: digits that are no date
        return None
    if local.year < _EARLIEST_YEAR:
        return None
    offset = found.groupdict().get("offset")
    if offset:
        return local.replace(tzinfo=_fixed_offset(offset)).astimezone(UTC)
    return local.replace(tzinfo=UTC) if utc else to_utc(local, zone, written_before)


def _fixed_offset(text: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:4])
    return timezone(timedelta(minutes=minutes if text[0] == "+" else -minutes))


_METADATA_TIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[T ](?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
    r"(?:\.\d+)?\s*(?P<offset>Z|[+-]\d{2}:?\d{2})?"
)
# QuickTime's creation date carries the camera's own UTC offset; creation_time is UTC by the MP4 standard
METADATA_KEYS = ("com.apple.quicktime.creationdate", "creation_time")


def time_from_metadata(tags: Mapping[str, str]) -> datetime | None:
    """The recording's start from container tags, in UTC; tags without an offset are taken as UTC."""
    lowered = {key.lower(): value for key, value in tags.items()}
    for key in METADATA_KEYS:
        found = _METADATA_TIME.fullmatch(lowered.get(key, "").strip())
        if found:
            moment = _moment(found, ZoneInfo("UTC"), True, None)
            if moment is not None:
                return moment
    return None


def container_tags(path: Path) -> dict[str, str]:
    """The container's and its streams' tags (the container's win); empty where the file cannot be opened."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            tags: dict[str, str] = {}
            for stream in container.streams:
                tags.update(stream.metadata)
            tags.update(container.metadata)
            return tags
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return {}


def read_start(
    path: Path, zone: ZoneInfo, *, mtime_ns: int, duration: float, use_mtime: bool = False,
    user_pattern: str | None = None, tags: Mapping[str, str] | None = None,
) -> ClockReading:
    """A video's start: from its name, else its container's tags, else (when asked) its mtime less its duration."""
    modified = datetime.fromtimestamp(mtime_ns / 1e9, UTC)
    named = time_from_name(path, zone, user_pattern, written_before=modified)
    if named is not None:
        return ClockReading(named, "name", zone.key)
    tagged = time_from_metadata(container_tags(path) if tags is None else tags)
    if tagged is not None:
        return ClockReading(tagged, "metadata", zone.key)
    if use_mtime:
        return ClockReading(modified - timedelta(seconds=duration), "mtime", zone.key)
    return ClockReading(None, "none", zone.key)


# --- the clock filters' syntax -----------------------------------------------------------------------

_WHEN = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?)?\s*(?P<offset>Z|[+-]\d{2}:?\d{2})?"
)


def parse_when(text: str, zone: ZoneInfo) -> datetime:
    """An ISO date (its midnight) or date and time, in `zone` unless it names an offset; returned in UTC."""
    found = _WHEN.fullmatch(text.strip())
    if not found:
        raise ConfigError(f"{text!r} is not an ISO date or date and time, e.g. 2024-05-01 or 2024-05-01T22:00")
    parts = [int(found[g] or 0) for g in ("year", "month", "day", "hour", "minute", "second")]
    try:
        local = datetime(*parts)
    except ValueError as error:
        raise ConfigError(f"{text!r}: {error}") from None
    if found["offset"]:
        return local.replace(tzinfo=_fixed_offset(found["offset"])).astimezone(UTC)
    return to_utc(local, zone)


_HOURS = re.compile(r"(?P<h1>\d{1,2}):(?P<m1>\d{2})\s*-\s*(?P<h2>\d{1,2}):(?P<m2>\d{2})")


def parse_hours(text: str) -> tuple[int, int]:
    """'22:00-06:00' as minutes of the day (start included, end excluded); a start after the end spans midnight."""
    found = _HOURS.fullmatch(text.strip())
    if not found:
        raise ConfigError(f"{text!r} is not a time-of-day range such as 22:00-06:00")
    start, end = (int(found[h]) * 60 + int(found[m]) for h, m in (("h1", "m1"), ("h2", "m2")))
    if max(start, end) > 24 * 60 or int(found["m1"]) > 59 or int(found["m2"]) > 59:
        raise ConfigError(f"{text!r}: hours run from 00:00 to 24:00")
    if start == end:
        raise ConfigError(f"{text!r} is an empty range")
    return start, end


def clock_filter(
    after: str | None = None, before: str | None = None, hours: str | None = None, tz: str | None = None
) -> dict:
    """The clock fields of a SearchFilter from what a user typed: dates and times in `tz` (default: the machine's)."""
    zone = zone_named(tz)
    return {
        "after": parse_when(after, zone) if after else None, "before": parse_when(before, zone) if before else None,
        "hours": parse_hours(hours) if hours else None, "zone": zone,
    }


def within_hours(moment: datetime, hours: tuple[int, int], zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = hours
    return start <= minute < end if start < end else minute >= start or minute < end


def in_zone(moment: datetime, zone_name: str) -> datetime:
    """The moment on the clocks of a zone (UTC for a zone this machine does not know)."""
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with the offset, to the millisecond."""
    return None if moment is None else moment.isoformat(timespec="milliseconds")
