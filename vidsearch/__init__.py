"""vidsearch: semantic search over a folder of video.

    from vidsearch import Archive
    with Archive.open("./vidsearch-index") as archive:
        archive.ingest(["/footage"])
        hits = archive.query("man in red jacket with glasses")

Importing the package loads no model library; they load when first used.
"""

from __future__ import annotations

__all__ = ["Archive", "Hit", "VidsearchError", "load_settings"]


def __getattr__(name: str):
    if name == "Archive":
        from .archive import Archive

        return Archive
    if name == "load_settings":
        from .config import load_settings

        return load_settings
    if name == "Hit":
        from .records import Hit

        return Hit
    if name == "VidsearchError":
        from .errors import VidsearchError

        return VidsearchError
    raise AttributeError(name)
