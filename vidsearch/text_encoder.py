"""Query texts to vectors without torch: the CLIP text tower exported to ONNX (by text_export.py, at ingest),
open_clip's tokenizer in plain Python, and a cache of the vectors of texts asked before."""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import ClipConfig, cache_dir
from .errors import ConfigError
from .identity import declared_identity
from .records import ModelIdentity, StoredModel

log = logging.getLogger("vidsearch")

TOWER_MODEL = "text.onnx"
TOWER_VOCABULARY = "bpe_simple_vocab_16e6.txt.gz"
TOWER_SPEC = "tower.json"

# What an export is checked on: our token ids must equal the model's own tokenizer's, and ONNX Runtime's vectors
# its PyTorch vectors. Case, punctuation, HTML entities, broken unicode, scripts without spaces, numbers, a text
# past the 77-token context.
PROBE_TEXTS = (
    "a man in a red jacket with glasses",
    "",
    "Two PEOPLE walking a dog on the beach, at sunset!",
    "she's here & they'll've gone &amp; 'quoted' \"double\"",
    "cafÃ© crÃ¨me",
    "naïve façade of the Müller-Lüdenscheid straße",
    "日本語のテキストと中文字符",
    "эмодзи 🚗🚲 and a 3.5 m truck at 12:45",
    "white\tvan\n\nparked   near  the   gate",
    "<start_of_text> and <end_of_text> typed by a user",
    "a very long description " * 30,
)


class TextEncoder(Protocol):
    identity: ModelIdentity

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def tower_folder(identity: ModelIdentity) -> Path:
    """Where the text tower of one model is kept: named by the weights' hash, so other weights never use it."""
    key = hashlib.sha256(f"{identity.model}\n{identity.weights}".encode()).hexdigest()[:16]
    return cache_dir() / "text-towers" / f"{re.sub(r'[^A-Za-z0-9._-]', '_', identity.model)}-{key}"


# --- tokenizer ---------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _byte_characters() -> dict[int, str]:
    """OpenAI CLIP's reversible map of the 256 bytes to printable characters, which the BPE merges are written in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(others)}}


class ClipTokenizer:
    """open_clip's SimpleTokenizer (OpenAI CLIP's byte-level BPE with its default 'lower' cleaning) without torch:
    the same token ids, padded with zeros or cut to the context length with the end token kept last."""

    SPECIAL = ("<start_of_text>", "<end_of_text>")

    def __init__(self, vocabulary: Path, context_length: int):
        import regex

        # the file's first line is a header; CLIP uses the first 48894 merges
        lines = gzip.open(vocabulary).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
        merges = [tuple(line.split()) for line in lines]
        characters = list(_byte_characters().values())
        tokens = [*characters, *(c + "</w>" for c in characters), *("".join(m) for m in merges), *self.SPECIAL]
        self.ids = {token: i for i, token in enumerate(tokens)}
        self.ranks = {merge: i for i, merge in enumerate(merges)}
        self.start, self.end = self.ids[self.SPECIAL[0]], self.ids[self.SPECIAL[1]]
        self.context_length = context_length
        self.words: dict[str, str] = {token: token for token in self.SPECIAL}
        self.pattern = regex.compile(
            "|".join(self.SPECIAL) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE,
        )

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """int64 token ids, one row of context_length per text."""
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.start, *self.encode(text), self.end][: self.context_length]
            ids[-1] = self.end
            out[row, : len(ids)] = ids
        return out

    def encode(self, text: str) -> list[int]:
        import ftfy

        text = " ".join(html.unescape(html.unescape(ftfy.fix_text(text))).strip().split()).lower()
        byte_characters = _byte_characters()
        ids = []
        for word in self.pattern.findall(text):
            word = "".join(byte_characters[b] for b in word.encode("utf-8"))
            ids.extend(self.ids[piece] for piece in self._merged(word).split(" "))
        return ids

    def _merged(self, word: str) -> str:
        """The word's BPE pieces, space-separated: the best-ranked adjacent pair merges first, until none is known."""
        if word in self.words:
            return self.words[word]
        parts = (*word[:-1], word[-1] + "</w>")
        while len(parts) > 1:
            pair = min(zip(parts, parts[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if pair not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == pair:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = tuple(merged)
        self.words[word] = " ".join(parts)
        return self.words[word]


# --- the exported text tower -----------------------------------------------------------------------------------


class OnnxTextEncoder:
    """A model's text tower run by ONNX Runtime: what a query needs of CLIP, loaded without torch."""

    batch_size = 64

    def __init__(self, folder: Path, identity: ModelIdentity):
        import onnxruntime

        spec = json.loads((folder / TOWER_SPEC).read_text())
        self.identity = identity
        self.tokenizer = ClipTokenizer(folder / TOWER_VOCABULARY, spec["context_length"])
        self.session = onnxruntime.InferenceSession(str(folder / TOWER_MODEL), providers=["CPUExecutionProvider"])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalized float32 vectors, one row per text, as ClipEmbedder.embed_texts gives them."""
        out = [np.zeros((0, self.identity.dim), dtype=np.float32)]
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(texts[start : start + self.batch_size])
            features = self.session.run(None, {"tokens": tokens})[0].astype(np.float32)
            out.append(features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out)


def open_text_tower(identity: ModelIdentity) -> OnnxTextEncoder | None:
    """The model's exported text tower, or None where none was (text_export.export_text_tower writes it)."""
    folder = tower_folder(identity)
    return OnnxTextEncoder(folder, identity) if (folder / TOWER_SPEC).is_file() else None


# --- remembered vectors ----------------------------------------------------------------------------------------


class TextVectorStore:
    """Vectors of texts on disk, for every model in one SQLite file (rows keyed by model and text); the least
    recently asked are forgotten past `limit` rows. A cache: where the file cannot be used, that is said once and
    queries go on without it."""

    def __init__(self, path: Path, limit: int = 20_000):
        self.path = path
        self.limit = limit
        self._connection: sqlite3.Connection | None = None
        self._unusable = False

    def get(self, model: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        try:
            with self._open() as db:  # one transaction: committed, or rolled back on an error
                for text in texts:
                    query = "SELECT vector FROM text_vectors WHERE model = ? AND text = ?"
                    if row := db.execute(query, (model, text)).fetchone():
                        found[text] = np.frombuffer(row[0], dtype=np.float32)
                db.executemany(
                    "UPDATE text_vectors SET used = ? WHERE model = ? AND text = ?",
                    [(time.time(), model, text) for text in found],
                )
        except (OSError, sqlite3.Error) as error:
            self._give_up(error)
        return found

    def put(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        try:
            with self._open() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO text_vectors (model, text, vector, used) VALUES (?, ?, ?, ?)",
                    [(model, text, v.astype(np.float32).tobytes(), time.time()) for text, v in vectors.items()],
                )
                db.execute(
                    "DELETE FROM text_vectors WHERE rowid IN "
                    "(SELECT rowid FROM text_vectors ORDER BY used DESC LIMIT -1 OFFSET ?)",
                    (self.limit,),
                )
        except (OSError, sqlite3.Error) as error:
            self._give_up(error)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> sqlite3.Connection:
        if self._unusable:
            raise sqlite3.OperationalError("unusable")
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS text_vectors (model TEXT NOT NULL, text TEXT NOT NULL, "
                "vector BLOB NOT NULL, used REAL NOT NULL, PRIMARY KEY (model, text))"
            )
        return self._connection

    def _give_up(self, error: Exception) -> None:
        if not self._unusable:
            log.warning("text vector cache %s is unusable (%s); queries go on without it", self.path, error)
        self._unusable = True
        self.close()


class PromptVectors:
    """Vectors of a fixed list of prompts (the attribute vocabulary's), computed once per model identity, text
    precision and prompt list, and kept as one file beside the text vector cache: every ingest reads them instead
    of running the text tower over hundreds of prompts. A cache: a file that cannot be read or written only costs
    the computing again."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, identity: ModelIdentity, precision: str, prompts: Sequence[str]) -> Path:
        key = hashlib.sha256(
            json.dumps([identity.model, identity.weights, identity.dim, precision, list(prompts)]).encode()
        ).hexdigest()[:24]
        return self.folder / f"{re.sub(r'[^A-Za-z0-9._-]', '_', identity.model)}-{key}.npy"

    def get(self, identity: ModelIdentity, precision: str, prompts: Sequence[str],
            compute: Callable[[Sequence[str]], np.ndarray]) -> np.ndarray:
        path = self.path(identity, precision, prompts)
        try:
            vectors = np.load(path)
            if vectors.shape == (len(prompts), identity.dim):
                return vectors
        except (OSError, ValueError):
            pass
        vectors = np.asarray(compute(prompts), dtype=np.float32)
        partial = path.with_name(f"{path.name}.partial-{os.getpid()}.npy")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(partial, vectors)
            os.replace(partial, path)
        except OSError as error:
            log.info("cannot keep the vocabulary's vectors in %s: %s", path, error)
        return vectors


def prompt_vectors() -> PromptVectors:
    return PromptVectors(cache_dir() / "vocabulary-vectors")


class CachedTextEncoder:
    """One model's text vectors, remembered: recent texts in memory (a server's repeated queries) and on disk (a
    command line asked the same again), both keyed by the model's identity and the exact text. The encoder itself
    loads only when a text is new."""

    def __init__(self, identity: ModelIdentity, load: Callable[[], TextEncoder], store: TextVectorStore,
                 memory_size: int = 1024):
        self.identity = identity
        self.load_seconds = 0.0  # spent loading the encoder, for a query's timings
        self._load = load
        self._encoder: TextEncoder | None = None
        self._store = store
        self._model = f"{identity.model} {identity.weights}"
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_size = memory_size
        self._lock = threading.Lock()  # a server's threads share one encoder, its caches and its SQLite connection

    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            started = time.perf_counter()
            self._encoder = self._load()
            self.load_seconds += time.perf_counter() - started
        return self._encoder

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalized float32 vectors, one row per text."""
        with self._lock:
            known = {text: self._memory[text] for text in texts if text in self._memory}
            wanted = list(dict.fromkeys(text for text in texts if text not in known))
            if wanted:
                known.update(self._store.get(self._model, wanted))
                new = [text for text in wanted if text not in known]
                if new:
                    computed = dict(zip(new, self.encoder().embed_texts(new)))
                    self._store.put(self._model, computed)
                    known.update(computed)
            for text in texts:
                self._memory[text] = known[text]
                self._memory.move_to_end(text)
            while len(self._memory) > self._memory_size:
                self._memory.popitem(last=False)
        if not texts:
            return np.zeros((0, self.identity.dim), dtype=np.float32)
        return np.stack([known[text] for text in texts])

    def close(self) -> None:
        self._store.close()


def query_encoder(stored: StoredModel | None, chosen: ClipConfig | None, load_model: Callable[[], TextEncoder]):
    """The text encoder for queries on an archive whose catalog records its model as `stored`.

    The catalog names the model of the archive's vectors, so its exported text tower answers without loading
    torch or the weights; where the caller chose a model (`chosen`), only when it is that model (weights hash).
    Otherwise, and where no tower was exported, `load_model` loads the full model, which checks it against the
    archive and says what is wrong.
    """
    identity = stored.identity if stored else None
    if identity is not None and chosen is not None:
        try:
            same = declared_identity(chosen) == (identity.model, identity.weights)
        except ConfigError:
            same = False
        identity = identity if same else None
    store = TextVectorStore(cache_dir() / "text-vectors.sqlite")
    if identity is None:
        model = load_model()
        return CachedTextEncoder(model.identity, lambda: model, store)

    def tower_or_model() -> TextEncoder:
        tower = open_text_tower(identity)
        if tower is None:
            log.info("no ONNX text tower of %s in %s yet: queries load the full model", identity.describe(),
                     cache_dir())
        return tower or load_model()

    return CachedTextEncoder(identity, tower_or_model, store)
