"""Naming models and files by what they hold: content hashes, and a model's identity before it loads."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from .config import ClipConfig, cache_dir
from .errors import ConfigError

log = logging.getLogger("vidsearch")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(path: Path) -> str:
    """file_sha256, remembered in the cache by the file's path, size, inode and change times: naming the weights of
    a query's model should not read 600 MB each time."""
    stat = path.stat()
    stamp = [stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns]
    memo = cache_dir() / "weights-sha256.json"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    key = str(path.resolve())
    if known.get(key, {}).get("stamp") == stamp:
        return known[key]["sha256"]
    known[key] = {"stamp": stamp, "sha256": file_sha256(path)}
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        partial = memo.with_name(f"{memo.name}.partial-{os.getpid()}")
        partial.write_text(json.dumps(known, indent=1))
        os.replace(partial, memo)
    except OSError as error:  # a read-only cache only costs the hashing again
        log.info("cannot remember the hash of %s in %s: %s", path, memo, error)
    return known[key]["sha256"]


def declared_identity(config: ClipConfig) -> tuple[str, str]:
    """(model, weights) as ModelIdentity names them once the model is loaded, without loading it."""
    model = Path(config.model).stem if Path(config.model).suffix == ".json" else config.model
    pretrained = config.pretrained or None
    if pretrained and is_weights_path(pretrained):
        if not Path(pretrained).is_file():
            raise ConfigError(f"CLIP weights file not found: {pretrained}")
        return model, f"sha256:{weights_sha256(Path(pretrained))}"
    return model, f"open_clip:{pretrained}"


def is_weights_path(pretrained: str) -> bool:
    """open_clip tags are bare words; anything with a folder or a weights suffix is a local file."""
    return os.sep in pretrained or Path(pretrained).suffix in {".pt", ".pth", ".bin", ".safetensors"}
