"""Clock time, pure: every name pattern with its documented example, metadata tags, zones and daylight saving,
the filters' syntax. No models, no files."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path, PurePath
from zoneinfo import ZoneInfo

import pytest

from shared_files import REPO
from vidsearch.clock import (
    NAME_PATTERNS, clock_filter, parse_hours, parse_when, read_start, time_from_metadata, time_from_name, to_utc,
    within_hours,
)
from vidsearch.errors import ConfigError

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
README = REPO / "README.md"

# each documented example, read in Berlin (UTC+2 in May): what it says in UTC
EXPECTED = {
    "frigate": datetime(2024, 5, 1, 14, 5, 30, tzinfo=UTC),  # Frigate writes UTC whatever the zone
    "dahua": datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
    "motion": datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
    "iso8601": datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),  # its own offset, +02:00
    "dashed": datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
    "dashcam": datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
    "date_time": datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
    "digits": datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
}


def test_every_pattern_has_an_expected_reading():
    assert sorted(EXPECTED) == sorted(p.name for p in NAME_PATTERNS)


@pytest.mark.parametrize("pattern", NAME_PATTERNS, ids=lambda p: p.name)
def test_each_name_pattern_reads_its_documented_example(pattern):
    path = PurePath("/footage/cam1") / pattern.example
    assert time_from_name(path, BERLIN) == EXPECTED[pattern.name]
    assert pattern.regex.search(path.as_posix() if pattern.whole_path else path.name)  # this pattern reads it
    assert f"`{pattern.example}`" in README.read_text()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("20240501T120000Z.mp4", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # ISO 8601 basic, UTC
        ("2024-05-01T14:00:00.mp4", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # no offset: the zone's
        ("2024-05-01 14-00-00.mkv", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # OBS
        ("Cam1.20240501_140000.mp4", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # Blue Iris
        ("Cam1-20240501-140000-1714564800.mp4", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # Synology
        ("DJI_20240501140000_0001_D.MP4", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("ch1_main_20240501140000_20240501141500.mp4", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # the first is the start
    ],
)
def test_other_writers_of_the_same_styles(name, expected):
    assert time_from_name(PurePath("/f") / name, BERLIN) == expected


@pytest.mark.parametrize("name", ["IMG_1234.MOV", "clip.mp4", "20241350_140000.mp4", "19700101_000000.mp4",
                                  "VID-20240501-WA0001.mp4", "123456789012345678901.mp4"])
def test_names_without_a_valid_time_give_none(name):
    assert time_from_name(PurePath("/f") / name, BERLIN) is None


def test_a_user_pattern_comes_first():
    pattern = r"/(?P<day>\d{2})\.(?P<month>\d{2})\.(?P<year>\d{4})/(?P<hour>\d{2})h(?P<minute>\d{2})m(?P<second>\d{2})"
    path = PurePath("/f/01.05.2024/14h00m00.mp4")
    assert time_from_name(path, BERLIN, pattern) == datetime(2024, 5, 1, 12, tzinfo=UTC)
    with pytest.raises(ConfigError):
        time_from_name(path, BERLIN, "(")


def test_a_skipped_local_time_reads_as_the_clock_before_the_change():
    # Berlin springs forward at 02:00 on 2024-03-31: 02:30 never showed; a clock not yet moved wrote it at UTC+1
    assert to_utc(datetime(2024, 3, 31, 2, 30), BERLIN) == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)
    assert to_utc(datetime(2024, 3, 31, 3, 30), BERLIN) == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)


def test_a_repeated_local_time_is_told_apart_by_when_the_file_was_written():
    # Berlin falls back at 03:00 on 2024-10-27: 02:30 shows at 00:30 and again at 01:30 UTC
    first, second = datetime(2024, 10, 27, 0, 30, tzinfo=UTC), datetime(2024, 10, 27, 1, 30, tzinfo=UTC)
    local = datetime(2024, 10, 27, 2, 30)
    assert to_utc(local, BERLIN) == first
    assert to_utc(local, BERLIN, written_before=datetime(2024, 10, 27, 0, 35, tzinfo=UTC)) == first
    assert to_utc(local, BERLIN, written_before=datetime(2024, 10, 27, 1, 35, tzinfo=UTC)) == second
    name = PurePath("/cam/2024-10-27_02-30-00.mp4")
    assert time_from_name(name, BERLIN, written_before=datetime(2024, 10, 27, 1, 40, tzinfo=UTC)) == second


def test_metadata_times_with_and_without_an_offset():
    assert time_from_metadata({"creation_time": "2024-05-01T12:00:00.000000Z"}) == datetime(2024, 5, 1, 12, tzinfo=UTC)
    apple = {"com.apple.quicktime.creationdate": "2024-05-01T14:00:00+0200", "creation_time": "2024-05-01T12:00:09Z"}
    assert time_from_metadata(apple) == datetime(2024, 5, 1, 12, tzinfo=UTC)  # the camera's own, with its offset
    assert time_from_metadata({"creation_time": "1970-01-01T00:00:00.000000Z"}) is None  # "never set"
    assert time_from_metadata({"creation_time": "1904-01-01T00:00:00Z"}) is None
    assert time_from_metadata({"encoder": "Lavf60"}) is None


def test_the_start_comes_from_the_name_then_metadata_then_mtime_when_asked():
    tags = {"creation_time": "2024-05-01T12:00:00Z"}
    mtime_ns = int(datetime(2024, 6, 1, 12, 0, 10, tzinfo=UTC).timestamp() * 1e9)
    named = read_start(Path("/f/2024-05-02_10-00-00.mp4"), BERLIN, mtime_ns=mtime_ns, duration=10, tags=tags)
    assert (named.start, named.source) == (datetime(2024, 5, 2, 8, tzinfo=UTC), "name")
    tagged = read_start(Path("/f/x.mp4"), BERLIN, mtime_ns=mtime_ns, duration=10, tags=tags)
    assert (tagged.start, tagged.source) == (datetime(2024, 5, 1, 12, tzinfo=UTC), "metadata")
    unknown = read_start(Path("/f/x.mp4"), BERLIN, mtime_ns=mtime_ns, duration=10, tags={})
    assert (unknown.start, unknown.source) == (None, "none")
    timed = read_start(Path("/f/x.mp4"), BERLIN, mtime_ns=mtime_ns, duration=10, tags={}, use_mtime=True)
    assert (timed.start, timed.source) == (datetime(2024, 6, 1, 12, tzinfo=UTC), "mtime")


def test_query_times_and_hours():
    assert parse_when("2024-05-01", BERLIN) == datetime(2024, 4, 30, 22, tzinfo=UTC)
    assert parse_when("2024-05-01T22:00", BERLIN) == datetime(2024, 5, 1, 20, tzinfo=UTC)
    assert parse_when("2024-05-01 22:00:30Z", BERLIN) == datetime(2024, 5, 1, 22, 0, 30, tzinfo=UTC)
    assert parse_hours("22:00-06:00") == (22 * 60, 6 * 60)
    for bad in ("yesterday", "2024-13-01"):
        with pytest.raises(ConfigError):
            parse_when(bad, BERLIN)
    for bad in ("22-06", "10:00-10:00", "25:00-26:00"):
        with pytest.raises(ConfigError):
            parse_hours(bad)
    with pytest.raises(ConfigError, match="unknown time zone"):
        clock_filter(tz="Mars/Olympus")


def test_hours_across_midnight_in_the_zone():
    night = parse_hours("22:00-06:00")
    assert within_hours(datetime(2024, 5, 1, 21, 30, tzinfo=UTC), night, BERLIN)  # 23:30 in Berlin
    assert within_hours(datetime(2024, 5, 2, 3, 59, tzinfo=UTC), night, BERLIN)  # 05:59
    assert not within_hours(datetime(2024, 5, 2, 4, 0, tzinfo=UTC), night, BERLIN)  # 06:00
    assert not within_hours(datetime(2024, 5, 1, 12, 0, tzinfo=UTC), night, BERLIN)
    assert within_hours(datetime(2024, 5, 1, 12, 0, tzinfo=UTC), parse_hours("13:00-15:00"), BERLIN)
