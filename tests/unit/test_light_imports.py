"""What importing loads: the package and its command line load no model library and no video decoder."""

from __future__ import annotations

import subprocess
import sys


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
