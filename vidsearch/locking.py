"""An exclusive lock on an open file, between processes, on POSIX (flock) and on Windows (msvcrt.locking).

Both are advisory to vidsearch's own processes and let go when the holder's file is closed or the process
dies. The lock is on the file's first byte, whatever the file holds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class LockBusy(Exception):
    """Another process holds the lock."""


if sys.platform == "win32":
    import msvcrt

    def try_lock(file: IO) -> bool:
        """Take the lock on `file` unless another process holds it; True once taken."""
        file.seek(0)  # msvcrt locks bytes from the current position; a file opened to append starts at its end
        try:
            msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:  # PermissionError: the byte is locked
            return False
        return True

    def unlock(file: IO) -> None:
        """Let go of a lock taken with try_lock."""
        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def try_lock(file: IO) -> bool:
        """Take the lock on `file` unless another process holds it; True once taken."""
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def unlock(file: IO) -> None:
        """Let go of a lock taken with try_lock."""
        fcntl.flock(file, fcntl.LOCK_UN)


@contextmanager
def exclusive(path: Path, wait_s: float = 0.0, poll_s: float = 0.05) -> Iterator[IO]:
    """Hold the lock on the file at `path` (created if missing) while the block runs; yields the open file.

    Raises LockBusy when another process still holds it after `wait_s` seconds of trying.
    """
    with open(path, "a+") as file:
        deadline = time.monotonic() + wait_s
        while not try_lock(file):
            if time.monotonic() >= deadline:
                raise LockBusy(f"{path} is locked by another process")
            time.sleep(poll_s)
        try:
            yield file
        finally:
            unlock(file)
