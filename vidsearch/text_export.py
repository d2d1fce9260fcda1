"""Write a CLIP model's text tower to ONNX at ingest, checked against PyTorch, so that queries need no torch."""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from .embed import ClipEmbedder
from .records import ModelIdentity
from .text_encoder import (
    PROBE_TEXTS, TOWER_MODEL, TOWER_SPEC, TOWER_VOCABULARY, ClipTokenizer, OnnxTextEncoder, tower_folder,
)

log = logging.getLogger("vidsearch")


def export_text_tower(model, tokenizer, identity: ModelIdentity) -> None:
    """The model's text tower as ONNX in the cache (vidsearch.text_encoder), once per weights, so that queries run
    without torch. Kept only where vidsearch's tokenizer gives this model's token ids, and ONNX Runtime its vectors
    (cosine >= 0.999), on the probe texts; any other model is queried through PyTorch, as before."""
    import onnx
    import open_clip
    import torch

    folder = tower_folder(identity)
    if (folder / TOWER_SPEC).is_file():
        return
    expected = np.asarray(tokenizer(list(PROBE_TEXTS)))
    vocabulary = Path(open_clip.tokenizer.default_bpe())
    tokens = ClipTokenizer(vocabulary, expected.shape[-1])(PROBE_TEXTS)
    if not np.array_equal(tokens, expected):
        log.info("%s has a tokenizer of its own: its queries run through PyTorch", identity.model)
        return
    log.info("exporting the text tower of %s to ONNX in %s (once)", identity.describe(), folder)

    # from a copy, since the TorchScript exporter leaves the modules it traced changed (image vectors then move by
    # about 1e-3)
    model = copy.deepcopy(model)

    class TextTower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.clip = model

        def forward(self, tokens):
            return self.clip.encode_text(tokens)

    device = next(model.parameters()).device
    # each process exports into its own folder: Ray workers and a query beside an ingest may start together
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated, and exports open_clip well
            torch.onnx.export(
                TextTower(), (torch.from_numpy(tokens[:1]).to(device),), str(partial / "export.onnx"), dynamo=False,
                opset_version=17, input_names=["tokens"], output_names=["features"],
                dynamic_axes={"tokens": {0: "batch"}, "features": {0: "batch"}},
            )
        # weights in a file of their own load in half the time: ONNX Runtime maps them instead of parsing them
        onnx.save_model(
            onnx.load(partial / "export.onnx"), partial / TOWER_MODEL, save_as_external_data=True,
            location=f"{TOWER_MODEL}.data",
        )
        (partial / "export.onnx").unlink()
        shutil.copy(vocabulary, partial / TOWER_VOCABULARY)
        spec = {"context_length": int(expected.shape[-1]), "model": identity.model, "weights": identity.weights}
        (partial / TOWER_SPEC).write_text(json.dumps(spec, indent=1))
        with torch.inference_mode():
            reference = ClipEmbedder.normalized(model.encode_text(torch.from_numpy(tokens).to(device)))
        agreement = float((OnnxTextEncoder(partial, identity).embed_texts(PROBE_TEXTS) * reference).sum(1).min())
    # a text tower that does not export (a custom architecture) is still queried through PyTorch: say so, go on
    except Exception as error:  # noqa: BLE001
        log.warning("could not export the text tower of %s to ONNX (%s): queries load PyTorch", identity.model, error)
        shutil.rmtree(partial, ignore_errors=True)
        return
    if agreement < 0.999:
        log.warning("the ONNX text tower of %s disagrees with PyTorch (cosine %.4f): not used", identity.model,
                    agreement)
        shutil.rmtree(partial)
        return
    try:
        partial.rename(folder)
    except OSError:  # another process finished first; its export is the same
        shutil.rmtree(partial)
