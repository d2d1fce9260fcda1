"""--precision auto on a CPU without AMX: an archive's first ingest compares the int8 image tower with fp32 on its own
frames and crops, records the figures and the decision in the catalog, and follows it from then on; --precision
fp32 and int8 skip the check. Random weights check the mechanics of both outcomes, not the value of int8."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared_files import footage_folder
from vidsearch import Archive
from vidsearch.config import load_settings
from vidsearch.precision import agrees

CLIP = "unit/intel_asl_walk.mkv"  # 3 s, one person


@pytest.fixture(scope="module", autouse=True)
def _cpu_without_amx(tmp_path_factory):
    import torch

    if torch.cpu._is_amx_tile_supported():
        pytest.skip("auto takes bf16 on a CPU with AMX: no int8 check there")


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    return footage_folder(tmp_path_factory.mktemp("footage"), CLIP, "unit/intel_asl_thanks.mkv")


def archive_with(folder, options, **clip):
    settings = load_settings(folder, **options)
    return Archive(replace(settings, clip=replace(settings.clip, **clip)))


# bounds every int8 tower meets, whatever the weights and the CPU: the check's int8 outcome, whose value is not tested
MET = {"int8_min_cosine": -1.0, "int8_min_label_agreement": 0.0, "int8_min_rank_correlation": -1.0,
       "int8_min_speedup": 0.0}


def test_auto_checks_once_on_the_archives_frames_and_crops_and_follows_its_decision(tmp_path, options, footage):
    with archive_with(tmp_path, options, **MET) as archive:
        archive.ingest([footage / CLIP], fps=2.0)
        check = archive.services.models.int8_check()
        assert check is not None and check.crops >= 1 and check.images > check.crops
        assert check.precision == "int8" and agrees(check.to_json(), check.bounds)
        assert archive.embedder().image_precision == "int8"
        assert archive.stats().to_json()["precision"] == {"setting": "auto", "int8_check": check.to_json()}
    with archive_with(tmp_path, options, **MET) as reopened:
        # the decision holds from the first image on: no second check, even on other footage
        assert reopened.embedder().image_precision == "int8"
        reopened.ingest([footage / "unit/intel_asl_thanks.mkv"], fps=2.0)
        assert reopened.services.models.int8_check() == check


def test_a_bound_not_met_keeps_fp32(tmp_path, options, footage):
    """A cosine bound of 1.0, which only fp32 itself meets: int8 is refused, and recorded as refused."""
    with archive_with(tmp_path, options, int8_min_cosine=1.0) as archive:
        archive.ingest([footage / CLIP], fps=2.0)
        check = archive.services.models.int8_check()
        assert check.precision == "fp32" and check.min_cosine < 1.0
        assert archive.embedder().image_precision == "float32"


def test_int8_that_is_not_faster_keeps_fp32(tmp_path, options, footage):
    """Agreement bounds met, a speed-up no tower reaches: int8 would trade agreement for nothing."""
    with archive_with(tmp_path, options, **{**MET, "int8_min_speedup": 100.0}) as archive:
        archive.ingest([footage / CLIP], fps=2.0)
        check = archive.services.models.int8_check()
        assert check.precision == "fp32" and 0 < check.speedup < 100.0
        assert check.speedup == pytest.approx(check.int8_images_per_s / check.fp32_images_per_s, rel=1e-6)
        assert archive.embedder().image_precision == "float32"


def test_forced_precisions_skip_the_check(tmp_path, options):
    with archive_with(tmp_path / "int8", {**options, "precision": "int8"}) as archive:
        assert archive.embedder().image_precision == "int8"
    with archive_with(tmp_path / "fp32", {**options, "precision": "fp32"}) as archive:
        assert archive.embedder().image_precision == "float32"
        assert archive.stats().to_json()["precision"] == {"setting": "fp32", "int8_check": None}
