"""End to end in a fresh environment: vidsearch installed (not editable) without decord, as on ARM Linux or an
Apple Silicon Mac, ingests real footage, then answers query, export and serve.

The environment is made as scripts/install.sh makes one, with venv and pip (and whatever index pip is configured
to use), so it takes what a user's install takes: a few minutes, most of them unpacking torch. Run it alone with
`pytest -m e2e tests/e2e/test_platforms_fresh_env.py`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shared_files import REPO, check_platforms, footage_folder

pytestmark = pytest.mark.e2e

CLIP = "unit/intel_asl_walk.mkv"  # 3 s, one signer


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """The bin folder of a new virtual environment holding vidsearch (from this checkout) and its base install."""
    folder = tmp_path_factory.mktemp("fresh")
    venv = folder / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    # a copy of the project, so that building it leaves nothing (build/, *.egg-info) in the checkout
    source = folder / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", *check_platforms().pins(), str(source)],
        check=True,
    )
    print(f"\nfresh environment installed in {time.monotonic() - started:.0f} s")
    return bin_dir


def run(bin_dir: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(bin_dir / "vidsearch"), *args], capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ingest_query_export_serve_without_decord(fresh, tmp_path, options, tmp_path_factory):
    python = str(fresh / "python")
    # the environment has no decord, and vidsearch comes from the environment, not from this checkout
    probe = subprocess.run(
        [python, "-c", "import importlib.util as u, vidsearch; print(u.find_spec('decord') is None, vidsearch.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    )
    missing, location = probe.stdout.split()
    assert missing == "True" and Path(location).is_relative_to(fresh.parent)

    env = {
        **os.environ, "YOLO_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
        "YOLO_CONFIG_DIR": str(tmp_path_factory.mktemp("ultralytics")), "VIDSEARCH_CACHE": str(tmp_path / "cache"),
    }
    root = footage_folder(tmp_path / "footage", CLIP)
    base = ["--index", str(tmp_path / "archive"), "--clip-model", options["clip_model"],
            "--clip-pretrained", options["clip_pretrained"], "--yolo-weights", options["yolo_weights"]]

    refused = run(fresh, *base, "ingest", str(root), "--reader", "decord", check=False, env=env)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "pip install 'vidsearch[decord]'" in refused.stderr

    # auto reads with PyAV where decord is missing; -v shows the device chosen
    ingested = run(fresh, *base, "--device", "auto", "-v", "ingest", str(root), "--reader", "auto", env=env)
    assert "indexed 1 videos" in ingested.stdout
    assert re.search(r"device: (cuda|cpu) \(auto: ", ingested.stderr), ingested.stderr

    base += ["--device", "cpu"]
    hits = json.loads(run(fresh, *base, "query", "a woman signing", "-k", "3", "--json", env=env).stdout)["hits"]
    assert hits and all(hit["video"] == str(root / CLIP) for hit in hits)

    out = tmp_path / "evidence"
    exported = json.loads(run(fresh, *base, "export", str(hits[0]["id"]), "--out", str(out), "--json", env=env).stdout)
    assert len(exported["exported"]) == 1
    assert list(out.rglob("*.mp4")) and list(out.rglob("*.jpg"))

    port = free_port()
    server = subprocess.Popen([str(fresh / "vidsearch"), *base, "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/api/search?q=a+woman+signing&k=3"
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    answer = json.loads(response.read())
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer within 180 s"
                time.sleep(0.5)
        assert [hit["id"] for hit in answer["hits"]] == [hit["id"] for hit in hits]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/hits/{hits[0]['id']}", timeout=10) as response:
            assert json.loads(response.read())["id"] == hits[0]["id"]
    finally:
        server.terminate()
        server.wait(timeout=30)
