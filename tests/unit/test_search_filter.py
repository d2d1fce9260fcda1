"""Search filters on their own: which video paths a pattern admits."""

from __future__ import annotations

from vidsearch.search import SearchFilter


def test_video_patterns_match_the_whole_path_or_its_end():
    from pathlib import Path

    path = Path("/footage/cam3/2026-01-01 entrance.mp4")
    assert SearchFilter(videos="cam3/*.mp4").matches_video(path)
    assert SearchFilter(videos="*entrance*").matches_video(path)
    assert SearchFilter(videos="/footage/*").matches_video(path)
    assert not SearchFilter(videos="cam4/*").matches_video(path)
