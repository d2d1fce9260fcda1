"""Which precision CLIP runs in, for each device and CPU (vidsearch.embed.resolve_precision, without torch)."""

from __future__ import annotations

import pytest

from vidsearch.embed import resolve_precision
from vidsearch.errors import ConfigError


def test_auto_takes_fp16_on_cuda_bf16_with_amx_and_int8_where_it_agrees_on_other_cpus():
    assert resolve_precision("auto", "cuda", amx=False) == "fp16"
    assert resolve_precision("auto", "cpu", amx=True) == "bf16"
    assert resolve_precision("auto", "cpu", amx=False) == "int8-if-agrees"
    assert resolve_precision("auto", "mps", amx=False) == "fp32"
    for forced in ("fp32", "bf16", "int8"):
        assert resolve_precision(forced, "cpu", amx=False) == forced


def test_int8_off_the_cpu_and_unknown_precisions_are_config_errors():
    with pytest.raises(ConfigError, match="CPU only"):
        resolve_precision("int8", "cuda", amx=False)
    with pytest.raises(ConfigError, match="precision must be one of"):
        resolve_precision("int4", "cpu", amx=False)
