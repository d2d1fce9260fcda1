"""The choice of reader and sampling, checked before any file is opened."""

from __future__ import annotations

import pytest

from shared_files import VIDEOS
from vidsearch.decode import open_video
from vidsearch.errors import ConfigError


def test_unknown_choices_are_refused():
    path = VIDEOS / "unit/intel_asl_thanks.mkv"
    with pytest.raises(ConfigError):
        open_video(path, reader="decord", sampling="keyframes")
    with pytest.raises(ConfigError):
        open_video(path, reader="opencv")
    with pytest.raises(ConfigError):
        open_video(path, sampling="scenes")
