"""Errors the library raises; the CLI turns them into one-line messages and exit codes."""

from __future__ import annotations

from pathlib import Path


class VidsearchError(Exception):
    """Base of every error that is the user's input or environment, not a bug."""


class DecodeError(VidsearchError):
    """A file could not be opened or decoded as video."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self):
        # travels between processes (Ray workers) with both of its fields
        return type(self), (self.path, self.reason)


class ManifestError(VidsearchError):
    """An evaluation manifest is missing, unreadable or malformed."""


class ModelMismatchError(VidsearchError):
    """The archive holds vectors of another embedding model."""


class ArchiveError(VidsearchError):
    """The archive folder is unusable: wrong schema version, busy, or damaged."""


class ConfigError(VidsearchError):
    """An option or setting has a value vidsearch cannot use."""


class NotFoundError(VidsearchError):
    """An id names nothing in the archive (no such hit)."""
