"""What installs and runs on other platforms: the device choice, the optional decord, the portable lock, the
in-process decoding Windows uses, and the package's stated Python versions."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from shared_files import REPO, VIDEOS, check_platforms
from vidsearch.config import DEVICES, TorchProbes, choose_device, resolve_device
from vidsearch.errors import ConfigError, DecodeError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


# --- the device ------------------------------------------------------------------------------------------


class Probes:
    """What a machine's PyTorch would answer; records what it was asked."""

    def __init__(self, cuda: bool, mps: bool):
        self.has = {"cuda": cuda, "mps": mps}
        self.asked: list[str] = []

    def cuda(self) -> bool:
        self.asked.append("cuda")
        return self.has["cuda"]

    def mps(self) -> bool:
        self.asked.append("mps")
        return self.has["mps"]


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_takes_cuda_then_mps_then_the_cpu(cuda, mps, expected):
    probes = Probes(cuda, mps)
    device, reason = choose_device("auto", probes)
    assert device == expected
    assert reason.startswith("auto")
    assert probes.asked == (["cuda"] if cuda else ["cuda", "mps"])


def test_a_named_device_is_checked_and_cpu_asks_nothing():
    probes = Probes(cuda=False, mps=False)
    assert choose_device("cpu", probes) == ("cpu", "asked for")
    assert probes.asked == []
    for device in ("cuda", "mps"):
        with pytest.raises(ConfigError, match=f"device {device}: PyTorch "):
            choose_device(device, probes)
        assert choose_device(device, Probes(cuda=True, mps=True))[0] == device
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda, mps"):
        choose_device("tpu", probes)


def test_the_choice_is_logged_for_verbose(caplog):
    with caplog.at_level(logging.INFO, logger="vidsearch"):
        assert resolve_device("auto", Probes(cuda=False, mps=True)) == "mps"
    assert "device: mps (auto: no CUDA GPU; Apple MPS (untested))" in caplog.messages


def test_this_machines_torch_answers_both_probes():
    import torch

    probes = TorchProbes()
    assert probes.cuda() is torch.cuda.is_available()
    assert probes.mps() is (sys.platform == "darwin" and torch.backends.mps.is_available())
    assert resolve_device("auto") == ("cuda" if probes.cuda() else "mps" if probes.mps() else "cpu")


def test_the_command_line_offers_every_device():
    from vidsearch.cli import cli

    [option] = [p for p in cli.params if p.name == "device"]
    assert tuple(option.type.choices) == DEVICES


# --- decord is optional ----------------------------------------------------------------------------------


def test_decord_is_an_extra_not_a_dependency():
    assert not any(re.match(r"decord\b", requirement) for requirement in PYPROJECT["dependencies"])
    assert PYPROJECT["optional-dependencies"]["decord"] == ["decord>=0.6"]


@pytest.fixture
def without_decord(monkeypatch):
    """As where decord is not installed: importing it fails, and the import system does not find it."""
    monkeypatch.setitem(sys.modules, "decord", None)


def test_the_decord_reader_without_decord_says_how_to_get_it(without_decord):
    from vidsearch.decode import DecodeWorker, DecordDecoder, check_options, decord_installed

    assert not decord_installed()
    clip = VIDEOS / "unit/intel_asl_thanks.mkv"
    for attempt in (
        lambda: check_options("decord", "time"),
        lambda: DecodeWorker("decord", "time", 10, 1),
        lambda: DecordDecoder(clip),
    ):
        with pytest.raises(ConfigError) as refused:
            attempt()
        message = str(refused.value)
        assert "\n" not in message
        assert "pip install 'vidsearch[decord]'" in message and "pyav reader" in message


def test_auto_reads_with_pyav_without_decord(without_decord):
    from vidsearch.decode import open_video

    with open_video(VIDEOS / "unit/iscc_band_176x144.mp4", reader="auto") as decoder:
        assert decoder.reader == "pyav"
        assert len([frame for batch in decoder.frames(1.0) for frame in batch]) == 61


def test_ingest_with_the_decord_reader_without_decord_is_one_line(tmp_path, options, without_decord):
    from click.testing import CliRunner

    from vidsearch.cli import cli

    base = ["--index", str(tmp_path / "archive"), "--clip-model", options["clip_model"],
            "--clip-pretrained", options["clip_pretrained"], "--yolo-weights", options["yolo_weights"]]
    result = CliRunner().invoke(cli, [*base, "ingest", str(VIDEOS / "unit/intel_asl_thanks.mkv"), "--reader", "decord"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert "pip install 'vidsearch[decord]'" in line


# --- Windows: the lock and the decoding ------------------------------------------------------------------


def test_the_lock_keeps_a_second_process_out(tmp_path):
    from vidsearch.locking import LockBusy, exclusive

    path = tmp_path / "ingest.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from vidsearch.locking import exclusive\n"
         f"with exclusive({str(path)!r}):\n    print('held', flush=True); sys.stdin.readline()"],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        started = time.monotonic()
        with pytest.raises(LockBusy, match="locked by another process"):
            with exclusive(path, wait_s=0.3):
                pass
        assert time.monotonic() - started >= 0.3
    finally:
        holder.communicate("\n", timeout=30)
    with exclusive(path) as file:  # let go once its holder is done
        assert file.name == str(path)
    with exclusive(path):  # and again: unlocking on the way out left nothing held
        pass


def test_in_process_decoding_gives_what_the_child_process_gives():
    from vidsearch.decode import DecodeWorker, Decoded

    clip = VIDEOS / "unit/intel_asl_walk.mkv"
    results = []
    for in_process in (True, False):
        with DecodeWorker("pyav", "time", 30, 2, in_process=in_process) as worker:
            assert (worker._process is None) == in_process
            results.append(list(worker.decode(clip, 2.0, threading.Event())))
    here, child = results
    assert isinstance(here[-1], Decoded) and here[-1] == child[-1]
    # 3 s at 2 fps: six frames, then the closing Decoded
    assert len(here) == len(child) > 2
    for a, b in zip(here[:-1], child[:-1]):
        assert (a.index, a.t) == (b.index, b.t)
        assert np.array_equal(a.image, b.image)


def test_in_process_decoding_refuses_a_bad_file_and_stops_when_told(tmp_path):
    from vidsearch.decode import DecodeWorker

    noise = tmp_path / "noise.mp4"
    noise.write_bytes(bytes(range(256)) * 400)
    worker = DecodeWorker("pyav", "time", 30, 2, in_process=True)
    with pytest.raises(DecodeError, match="noise.mp4"):
        list(worker.decode(noise, 1.0, threading.Event()))
    stop = threading.Event()
    frames = []
    for item in worker.decode(VIDEOS / "unit/iscc_band_176x144.mp4", 1.0, stop):
        frames.append(item)
        stop.set()
    assert len(frames) == 1  # no more frames, and no Decoded, once stopped
    worker.close()


# --- the package's Python versions and the platform check ------------------------------------------------


def test_the_classifiers_name_exactly_the_python_versions_required():
    from packaging.specifiers import SpecifierSet

    required = SpecifierSet(PYPROJECT["requires-python"])
    supported = [f"3.{minor}" for minor in range(6, 20) if f"3.{minor}.0" in required]
    named = [c.rsplit(" :: ", 1)[1] for c in PYPROJECT["classifiers"] if re.fullmatch(r".* :: 3\.\d+", c)]
    assert supported == named == ["3.10", "3.11", "3.12", "3.13"]
    assert check_platforms().python_versions(PYPROJECT) == ("3.10", "3.13")


def test_the_check_pins_torch_as_the_installer_does():
    installer = (REPO / "scripts" / "install.sh").read_text()
    pins = check_platforms().pins()
    assert [p.split("==")[0] for p in pins] == ["torch", "torchvision"]
    assert all(f'"{pin}"' in installer for pin in pins)


def test_the_check_explains_a_failure_in_one_line():
    reason = check_platforms().short_reason
    no_wheel = """error: No solution found when resolving dependencies
  cause: Because decord==0.6.0 has no wheels with a matching platform tag (e.g., `macosx_14_0_arm64`) and only
         decord<=0.6.0 is available, we can conclude that decord>=0.6.0 cannot be used.

hint: Wheels are available for `decord` (v0.6.0) on the following platforms: `manylinux2010_x86_64`, `win_amd64`
"""
    assert reason(no_wheel) == "decord: wheels only for manylinux2010_x86_64, win_amd64"
    source_only = """  cause: Because face-recognition-models==0.3.0 has no usable wheels and only ...
hint: Wheels are required for `face-recognition-models` because building from source is disabled for all packages
"""
    assert reason(source_only) == "face-recognition-models: no wheel on PyPI (source distribution only)"
    assert reason("  cause: Because nothing==1 was not found, we can conclude that x") == "Because nothing==1 was not found"
