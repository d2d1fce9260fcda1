"""What importing loads: the package and its command line load no model library and no video decoder, and the
unit tests, collected as pytest collects them, load none of the model libraries either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared_files import REPO

UNIT = Path(__file__).resolve().parent
MODEL_LIBRARIES = ("torch", "ultralytics", "open_clip")


def test_the_unit_tests_load_no_model_library():
    """A fresh process collects tests/unit (its conftest files, its modules and pytest's plugins, all imported) and
    then names the model libraries it holds: none. tests/unit/conftest.py fails a unit test that loads one later."""
    code = (
        "import sys, pytest\n"
        f"code = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', {str(UNIT)!r}])\n"
        f"print('loaded:', *sorted(set({MODEL_LIBRARIES!r}) & set(sys.modules)))\n"
        "sys.exit(int(code))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "loaded:", result.stdout.splitlines()[-1]


def test_import_and_help_load_no_model_library():
    code = (
        "import sys, vidsearch, vidsearch.cli\n"
        "heavy = {'torch', 'ultralytics', 'faiss', 'cv2', 'open_clip', 'decord'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run([sys.executable, "-m", "vidsearch", "--help"], capture_output=True, text=True, check=True)
    for command in ("ingest", "query", "eval", "stats", "prune"):
        assert command in result.stdout


def test_import_loads_neither_library():
    code = "import sys, vidsearch.decode; sys.exit('decord' in sys.modules or 'av' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
