"""Keep an archive in step with folders that recorders write into: a file is ingested once it has stopped growing,
re-indexed when it grows again, and forgotten when it is removed (with prune).

Change events come from watchdog (inotify, FSEvents, ReadDirectoryChangesW) where the folder delivers them; a full
rescan every `poll_s` seconds catches what they miss, since network mounts deliver none. Whether a file is new,
grown or unchanged is the ingester's own incremental rule, so a restart resumes with nothing lost or doubled."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ArchiveError
from .events import IngestEvent, VideoIndexed
from .scan import VIDEO_EXTENSIONS

log = logging.getLogger("vidsearch")


@dataclass(frozen=True, slots=True)
class VideoRemoved:
    """A watched file that is gone, forgotten by the archive (watch --prune)."""

    path: Path


@dataclass(slots=True)
class _Growth:
    """The last size and mtime seen of a file, and since when (monotonic seconds) they have not changed."""

    size: int
    mtime_ns: int
    since: float


class Watcher:
    """Watches `folders` for an archive until `stop()`; `ingest_options` are Archive.ingest's keyword options."""

    def __init__(
        self, archive, folders: Sequence[Path], *, settle_s: float = 10.0, prune: bool = False, poll_s: float = 10.0,
        ingest_options: dict | None = None, on_event: Callable[[IngestEvent | VideoRemoved], None] = lambda e: None,
        on_indexed: Callable[[list[Path]], None] = lambda paths: None,
    ):
        self.archive = archive
        self.folders = [Path(os.path.abspath(f)) for f in folders]
        self.settle_s = settle_s
        self.prune = prune
        self.poll_s = poll_s
        self.ingest_options = ingest_options or {}
        self.on_event = on_event
        self.on_indexed = on_indexed
        self._changed: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._growing: dict[Path, _Growth] = {}  # files changed since they were last handed to ingest
        self._handed: dict[Path, tuple[int, int]] = {}  # size and mtime of each file when ingest last took it
        self._pruned_once = False  # the first prune also forgets what was removed while nobody watched

    def stop(self) -> None:
        self._stopping.set()
        self._changed.put(None)  # wakes the loop

    def run(self) -> None:
        """Until stop(): every file found at start and every one that changes is ingested once it has settled."""
        observer = self._observe()
        try:
            last_scan = -float("inf")
            while not self._stopping.is_set():
                if time.monotonic() - last_scan >= self.poll_s:
                    self._rescan()
                    last_scan = time.monotonic()
                self._drain_events(timeout=min(1.0, self.settle_s / 4, self.poll_s))
                self._ingest_settled()
        finally:
            if observer is not None:
                observer.stop()
                observer.join()

    def _observe(self):
        """A watchdog observer feeding changed paths into the queue; None where the platform gives no events."""
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            log.info("watchdog is not installed: watching by rescans every %s s", self.poll_s)
            return None
        changed = self._changed

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if not event.is_directory:
                    for path in (event.src_path, getattr(event, "dest_path", "")):
                        if path:
                            changed.put(Path(os.fsdecode(path)))

        observer = Observer()
        try:
            for folder in self.folders:
                observer.schedule(Handler(), str(folder), recursive=True)
            observer.start()
        except OSError as error:  # out of inotify watches, say: rescans still see everything
            log.warning("no change events (%s): watching by rescans every %s s", error, self.poll_s)
            return None
        return observer

    def _rescan(self) -> None:
        for folder in self.folders:
            for root, dirs, files in os.walk(folder):
                dirs.sort()
                for name in files:
                    self._note(Path(root) / name)
        self._prune_gone()

    def _drain_events(self, timeout: float) -> None:
        try:
            path = self._changed.get(timeout=timeout)
            while path is not None:
                self._note(path)
                path = self._changed.get_nowait()
        except queue.Empty:
            pass

    def _note(self, path: Path) -> None:
        """Start or restart a file's settling clock when its size or mtime differs from the last look."""
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            return
        try:
            st = path.stat()
        except OSError:  # removed (or renamed away) since the event
            if path in self._handed or path in self._growing:
                self._prune_gone()
            return
        state = (st.st_size, st.st_mtime_ns)
        if self._handed.get(path) == state:
            self._growing.pop(path, None)
            return
        seen = self._growing.get(path)
        if seen is None or (seen.size, seen.mtime_ns) != state:
            self._growing[path] = _Growth(*state, since=time.monotonic())

    def _ingest_settled(self) -> None:
        for path in list(self._growing):
            self._note(path)
        now = time.monotonic()
        settled = sorted(p for p, g in self._growing.items() if now - g.since >= self.settle_s and p.exists())
        if not settled:
            return
        indexed: list[Path] = []

        def on_event(event: IngestEvent) -> None:
            if isinstance(event, VideoIndexed):
                indexed.append(event.path)
            self.on_event(event)

        try:
            self.archive.ingest(settled, roots=self.folders, **self.ingest_options, on_event=on_event)
        except ArchiveError as error:  # busy with another ingest, or a write failed: the next round tries again
            log.warning("%s; trying again in %s s", error, self.poll_s)
            return
        for path in settled:
            growth = self._growing.pop(path)
            self._handed[path] = (growth.size, growth.mtime_ns)
        if indexed:
            self.on_indexed(indexed)

    def _prune_gone(self) -> None:
        """Forget files that are gone; the archive forgets them too with prune (all gone under the folders)."""
        gone = [p for p in [*self._growing, *self._handed] if not p.exists()]
        for path in gone:
            self._growing.pop(path, None)
            self._handed.pop(path, None)
        if not (self.prune and (gone or not self._pruned_once)):
            return
        try:
            removed = self.archive.prune(under=self.folders)
        except ArchiveError as error:
            log.warning("%s; pruning again at the next rescan", error)
            return
        self._pruned_once = True
        for path in removed:
            self.on_event(VideoRemoved(path))
