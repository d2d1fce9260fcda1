"""Queries without torch: the ONNX text tower against open_clip, the torch-free tokenizer against open_clip's, the
caches keyed by model identity, and the query timings (the weights hash and the text vector store on their own
are in tests/unit/test_text_caches.py)."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from shared_files import TINY_CLIP_CONFIG, footage_folder
from vidsearch import Archive
from vidsearch.cli import cli
from vidsearch.config import ClipConfig
from vidsearch.embed import ClipEmbedder
from vidsearch.records import StoredModel
from vidsearch.text_export import export_text_tower
from vidsearch.text_encoder import (
    PROBE_TEXTS, ClipTokenizer, open_text_tower, query_encoder, tower_folder,
)

TEXTS = [
    *PROBE_TEXTS,
    "A WOMAN in a yellow hoodie signing",
    "person wearing a blue cap and sunglasses, carrying a backpack",
    "I'm sure it's the car we'd seen; they've gone, you'll see",
    "3 men, 2 dogs and 1 bike at 10:30pm",
    "¿Dónde está la estación? À bientôt, ça va",
    "Ελληνικά, עברית, العربية, हिन्दी, 한국어, ไทย",
    "👩‍👩‍👧 family of three 🎉🎉",
    "ﬁnal ligatures ½ ² Ⅻ and a zero\u200bwidth space",
    "&lt;b&gt;escaped&lt;/b&gt; &quot;html&quot;",
    "word " * 75,  # 77 tokens with the start and end tokens: exactly the context
    "word " * 76,  # one past it: cut, with the end token kept last
]


def clip_config(weights) -> ClipConfig:
    return ClipConfig(str(TINY_CLIP_CONFIG), str(weights), batch_size=8, precision="fp32")


@pytest.fixture(scope="module")
def embedder(tiny_clip_weights) -> ClipEmbedder:
    return ClipEmbedder(clip_config(tiny_clip_weights), "cpu", on_loaded=export_text_tower)


def random_texts(count: int, seed: int = 0) -> list[str]:
    """Strings drawn from ASCII, Latin-1, Cyrillic, CJK, emoji, combining marks, digits and whitespace."""
    ranges = [(0x20, 0x7E), (0xA0, 0xFF), (0x400, 0x4FF), (0x4E00, 0x4FFF), (0x1F600, 0x1F64F), (0x300, 0x36F)]
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        chars = []
        for _ in range(rng.randint(0, 120)):
            low, high = rng.choice(ranges)
            chars.append(rng.choice([chr(rng.randint(low, high)), " ", "\t", str(rng.randint(0, 9))]))
        texts.append("".join(chars))
    return texts


def test_tokenizer_gives_open_clip_token_ids(embedder):
    import open_clip

    ours = ClipTokenizer(open_clip.tokenizer.default_bpe(), 77)
    texts = TEXTS + random_texts(300)
    expected = embedder.tokenizer(texts).numpy()
    assert np.array_equal(ours(texts), expected)
    cut = ours(["word " * 76])[0]
    assert cut[-1] == ours.end and cut[0] == ours.start  # truncated at 77 with the end token last


def test_onnx_text_tower_agrees_with_open_clip(embedder):
    tower = open_text_tower(embedder.identity)
    assert tower is not None and tower_folder(embedder.identity).name.startswith("tiny-clip-")
    vectors = tower.embed_texts(TEXTS)
    cosine = np.sum(vectors * embedder.embed_texts(TEXTS), axis=1)
    # the same weights under two runtimes: rounding alone moves a cosine by far less than 1e-3
    assert vectors.shape == (len(TEXTS), 64) and cosine.min() > 0.999, cosine.min()
    assert tower.embed_texts([]).shape == (0, 64)


def test_caches_are_keyed_by_model_identity(tmp_path, embedder, tiny_clip_weights):
    import torch

    state = {k: v * 1.5 if v.is_floating_point() else v for k, v in torch.load(tiny_clip_weights).items()}
    other_weights = tmp_path / "other.pt"
    torch.save(state, other_weights)
    other = ClipEmbedder(clip_config(other_weights), "cpu")  # not exported: nothing of the first model may stand in
    assert other.identity.weights != embedder.identity.weights
    assert open_text_tower(other.identity) is None
    stored = StoredModel("tiny-clip.json", str(tiny_clip_weights), embedder.identity)
    first = query_encoder(stored, None, lambda: embedder)
    asked = first.embed_texts(["a cyclist in a helmet"])
    # another process asking the same text of the same model gets it from disk, without loading an encoder
    again = query_encoder(stored, None, lambda: embedder)
    np.testing.assert_array_equal(again.embed_texts(["a cyclist in a helmet"]), asked)
    assert again.load_seconds == 0.0
    # the other weights get their own vector, not the first model's
    stored_other = StoredModel("tiny-clip.json", str(other_weights), other.identity)
    theirs = query_encoder(stored_other, None, lambda: other).embed_texts(["a cyclist in a helmet"])
    np.testing.assert_allclose(theirs, other.embed_texts(["a cyclist in a helmet"]), atol=1e-5)
    # under the 0.999 that one model reaches under two runtimes: another model's vector
    assert float(np.sum(theirs * asked)) < 0.99
    # naming the other weights on the command line does not pass for the archive's model
    chosen = query_encoder(stored, clip_config(other_weights), lambda: other)
    assert chosen.identity == other.identity


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory, options):
    root = footage_folder(tmp_path_factory.mktemp("footage"), "unit/intel_asl_thanks.mkv")
    folder = tmp_path_factory.mktemp("archive")
    with Archive.open(folder, **options) as archive:
        archive.ingest([root])
    return folder


def test_a_query_loads_no_torch(small_archive, options):
    """A new process querying an ingested archive, through the API with the model named, and through the
    command line with the defaults (device auto), never imports torch."""
    named = {k: v for k, v in options.items() if k != "yolo_weights"}
    script = f"""
import sys
from vidsearch import Archive
from vidsearch.cli import cli
with Archive.open({str(small_archive)!r}, **{named!r}) as archive:
    assert archive.query("a person signing", k=3)
    assert archive.query("a person signing", k=3, exclude=["a dog"])
cli(["--index", {str(small_archive)!r}, "query", "hands in front of a face", "--json"], standalone_mode=False)
print("torch" in sys.modules, "open_clip" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False False"


def test_timings(small_archive, options):
    runner = CliRunner()
    base = ["--index", str(small_archive), "--clip-model", options["clip_model"],
            "--clip-pretrained", options["clip_pretrained"]]
    result = runner.invoke(cli, [*base, "query", "a person", "--timings", "--json"])
    assert result.exit_code == 0, result.output
    timings = json.loads(result.stdout)["timings"]
    assert {"encode_ms", "search_ms", "fetch_ms", "total_ms"} <= set(timings)
    assert timings["total_ms"] >= timings["encode_ms"] + timings["search_ms"] + timings["fetch_ms"] > 0
    result = runner.invoke(cli, [*base, "query", "a person", "--timings"])
    assert result.exit_code == 0 and "timings (ms): " in result.stderr and " encode " in result.stderr
    result = runner.invoke(cli, [*base, "query", "--like", "1", "--timings"])
    assert result.exit_code == 2 and "--timings times text queries" in result.output
