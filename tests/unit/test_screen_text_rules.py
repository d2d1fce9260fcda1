"""Text on screen, pure logic: the folded form that makes OCR's confusions one, approximate matching, spans of
repeated text, and the clock read from an overlay's lines."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from vidsearch.config import default_settings
from vidsearch.records import Box, Detection, TextReading
from vidsearch.screen_text import TextSpans, fold
from vidsearch.screen_text.fold import edits_to_fit, tolerated_edits
from vidsearch.screen_text.overlay import clock_shown, start_from_readings

CONFIG = default_settings(Path("unused")).screen_text


@pytest.mark.parametrize("read", ["KX 4471", "kx-4471", "KX447I", "KX 44 7l", "KX4471."])
def test_readings_that_differ_by_ocr_confusions_and_spacing_fold_alike(read):
    assert fold(read) == fold("KX 4471")


def test_different_texts_stay_different_when_folded():
    assert fold("KX 4471") != fold("KX 4474")
    assert fold("BUS 42") != fold("BUS 43")


def test_a_query_fits_inside_a_longer_line_within_its_edits():
    assert edits_to_fit(fold("KX 4471"), fold("PLATE KX 4471 UK")) == 0
    assert edits_to_fit(fold("KX 4471"), fold("PLATE KX 4A71 UK")) == 1  # one misread character
    assert edits_to_fit(fold("KX 4471"), fold("KX 471")) == 1  # one dropped
    assert edits_to_fit(fold("KX 4471"), fold("GATE 7")) > tolerated_edits(fold("KX 4471"))
    assert tolerated_edits(fold("KX 4471")) == 1 and tolerated_edits(fold("BUS 42")) == 0


def _reading(text: str, x: float = 10, confidence: float = 0.9, within: Detection | None = None) -> TextReading:
    return TextReading(box=Box(x, 10, x + 50, 30), text=text, confidence=confidence, within=within)


def test_a_text_read_in_consecutive_frames_is_one_span_at_its_best_reading():
    spans = TextSpans(CONFIG)
    spans.add(0, 0.0, [_reading("GATE 7", confidence=0.8)])
    spans.add(1, 1.0, [_reading("GATE 7", confidence=0.95), _reading("BUS 42", x=200)])
    spans.add(2, 2.0, [_reading("GATE7", confidence=0.9)])  # read without its space: the same text
    found = {s.best.text: s for s in spans.finish()}
    assert set(found) == {"GATE 7", "BUS 42"}
    gate = found["GATE 7"]
    assert (gate.start, gate.end, gate.frames, gate.frame_position, gate.best.confidence) == (0.0, 2.0, 3, 1, 0.95)
    assert (found["BUS 42"].start, found["BUS 42"].end, found["BUS 42"].frames) == (1.0, 1.0, 1)


def test_a_text_gone_for_longer_than_the_gap_comes_back_as_a_new_span():
    spans = TextSpans(CONFIG)
    spans.add(0, 0.0, [_reading("GATE 7")])
    spans.add(1, 1.0, [])
    spans.add(2, 0.5 + CONFIG.max_gap_s + 1.0, [_reading("GATE 7")])
    assert [(s.start, s.end) for s in spans.finish()] == [(0.0, 0.0), (0.5 + CONFIG.max_gap_s + 1.0,) * 2]


def test_duplicate_frames_hold_a_span_open_and_two_alike_texts_in_one_frame_are_two_spans():
    spans = TextSpans(CONFIG)
    spans.add(0, 0.0, [_reading("STOP", x=10), _reading("STOP", x=300)])
    for t in range(1, 10):  # a static scene: every sampled frame dropped as a duplicate
        spans.hold(float(t))
    spans.add(1, 10.0, [_reading("STOP", x=10), _reading("STOP", x=300)])
    found = spans.finish()
    assert [(s.start, s.end, s.frames) for s in found] == [(0.0, 10.0, 2), (0.0, 10.0, 2)]
    assert sorted(s.best.box.x1 for s in found) == [10, 300]


@pytest.mark.parametrize(
    ("lines", "day_first", "expected"),
    [
        (["08-28-2024 Mie21:19:29", "Camera 01"], False, datetime(2024, 8, 28, 21, 19, 29)),  # the CCTV clip's
        (["2024/05/01", "14:03:07"], False, datetime(2024, 5, 1, 14, 3, 7)),  # date and time on separate lines
        (["05-06-2024 02:03:04 PM"], False, datetime(2024, 5, 6, 14, 3, 4)),
        (["05-06-2024 02:03:04 PM"], True, datetime(2024, 6, 5, 14, 3, 4)),
        (["28.08.2024 21:19:29"], False, datetime(2024, 8, 28, 21, 19, 29)),  # over 12: only a day
        (["Camera 01", "21:19:29"], False, None),  # no date
        (["13-13-2024 21:19:29"], False, None),  # no such date
    ],
)
def test_the_clock_shown_in_a_frames_lines(lines, day_first, expected):
    assert clock_shown(lines, day_first) == expected


def _shown(start: datetime, *stamps: float, misread: dict | None = None) -> list[tuple[float, datetime]]:
    """What an overlay starting at `start` shows at each timestamp (whole seconds), some seconds misread."""
    misread = misread or {}
    return [
        (t, (start + timedelta(seconds=t)).replace(microsecond=0) + timedelta(seconds=misread.get(t, 0)))
        for t in stamps
    ]


def test_an_overlay_that_advances_with_the_video_gives_its_start_within_a_second():
    start = datetime(2024, 8, 28, 21, 18, 4, 300_000)
    found = start_from_readings(_shown(start, 0.0, 30.0, 63.7, 93.7, 124.6, 154.6, misread={93.7: 7}))
    # each whole-second reading puts the start in a second that holds it: the middle of their overlap is < 0.5 s off
    assert abs((found - start).total_seconds()) < 0.5


def test_an_overlay_that_does_not_advance_with_the_video_gives_no_start():
    frozen = [(t, datetime(2024, 8, 28, 21, 18, 4)) for t in (0.0, 30.0, 60.0, 90.0)]
    assert start_from_readings(frozen) is None
    assert start_from_readings(_shown(datetime(2024, 8, 28, 21, 18, 4), 0.0)) is None  # one frame proves nothing
    # frames a second apart agree with a frozen clock as well as with a running one: they prove nothing either
    frozen_briefly = [(0.0, datetime(2024, 8, 28, 21, 18, 4)), (1.0, datetime(2024, 8, 28, 21, 18, 4))]
    assert start_from_readings(frozen_briefly) is None
