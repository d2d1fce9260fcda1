"""Named moments at which a test may kill the process: where a crash could leave the archive half-written.

`VIDSEARCH_CRASH_AT=<name>` kills the process (SIGKILL, as a power cut or the OOM killer would) when it reaches that
point; the resume tests try each one. Unset, a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "decoding",  # the first frames of a video arrived from the decoder
    "shard-written",  # a video's new shard is on disk, the catalog's transaction not yet committed
    "committed",  # the catalog committed a video, its vectors not yet in the indexes, its old shard not yet removed
    "index-saving",  # an index file is replaced, its description (.json) not yet
)


def crash_point(name: str) -> None:
    if os.environ.get("VIDSEARCH_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
