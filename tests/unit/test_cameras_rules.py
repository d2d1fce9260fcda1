"""Which camera a path belongs to: pure rules over paths, no models."""

from __future__ import annotations

from pathlib import PurePath

import pytest

from vidsearch.cameras import camera_of, camera_pattern
from vidsearch.errors import ConfigError

ROOT = PurePath("/footage")


@pytest.mark.parametrize(
    "path, camera",
    [
        ("/footage/cam3/2024/05/01/x.mp4", "cam3"),  # the first folder under the root, however deep the file
        ("/footage/cam3/x.mp4", "cam3"),
        ("/footage/x.mp4", "footage"),  # a file directly in the root: the root's name
    ],
)
def test_the_first_folder_under_the_ingest_root_names_the_camera(path, camera):
    assert camera_of(PurePath(path), [ROOT]) == camera


def test_the_deepest_root_holding_a_file_is_its_root():
    assert camera_of(PurePath("/footage/site/cam1/x.mp4"), [ROOT, PurePath("/footage/site")]) == "cam1"


def test_a_file_named_on_its_own_belongs_to_its_folder():
    assert camera_of(PurePath("/footage/gate/x.mp4"), [PurePath("/footage/gate/x.mp4")]) == "gate"


def test_the_settings_pattern_names_the_camera_where_it_matches():
    pattern = camera_pattern(r"/(?P<camera>ch\d+)_")
    assert camera_of(PurePath("/footage/nvr/ch07_20240501140000.mp4"), [ROOT], pattern) == "ch07"
    assert camera_of(PurePath("/footage/nvr/other.mp4"), [ROOT], pattern) == "nvr"  # no match: the default rule


def test_a_pattern_without_a_camera_group_is_refused():
    with pytest.raises(ConfigError, match="camera"):
        camera_pattern(r"/ch\d+_")
    with pytest.raises(ConfigError, match="not a regular expression"):
        camera_pattern(r"(")
