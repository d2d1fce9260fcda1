"""Writing to an archive: one writer at a time, and a failed write said in one line that names what failed."""

from __future__ import annotations

import os
import re
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ..errors import ArchiveError
from ..locking import LockBusy, exclusive


class WriteGuard:
    """The writer lock (`ingest.lock` in the archive folder) and the message of a write that fails."""

    def __init__(self, folder: Path):
        self.folder = folder

    @contextmanager
    def writer(self, wait_s: float = 0.0):
        """One writer at a time per archive; a second ingest is told, not queued behind a silent wait.

        A query that repaired the index saves it under this lock too, for a moment: an ingest waits `wait_s`
        for that rather than fail beside it.
        """
        with ExitStack() as held:
            try:
                held.enter_context(exclusive(self.folder / "ingest.lock", wait_s))
            except LockBusy:
                raise ArchiveError(f"archive {self.folder} is busy: another ingest is writing to it") from None
            yield

    @contextmanager
    def writing(self, what: str):
        """A write that fails (disk full, file too large, I/O error) stops with one line saying what failed;
        every video committed before it stays, and the same command resumes once there is room."""
        from sqlalchemy.exc import OperationalError

        try:
            yield
        # RuntimeError: faiss reports a failed write as one, with the system's reason in parentheses at the end
        except (OSError, OperationalError, RuntimeError) as error:
            raise ArchiveError(
                f"{what} failed: {write_failure(error)}; what was committed before is kept, "
                "and the same command resumes once this is fixed"
            ) from error


def write_failure(error: Exception) -> str:
    """The system's reason for a failed write, in a few words."""
    if isinstance(error, OSError):
        reason = os.strerror(error.errno) if error.errno else str(error)
        return f"{reason} ({error.filename})" if error.filename else reason
    orig = getattr(error, "orig", None)  # SQLAlchemy's wrapper around the sqlite3 error
    if orig is not None:
        return f"catalog: {orig}"
    last = re.search(r"\(([^()]+)\)\s*$", str(error))
    return last.group(1) if last else str(error).splitlines()[0]
