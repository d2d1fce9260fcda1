"""The models, each loaded on first use and kept: CLIP for pictures, the text encoder for queries, the detector, the
attribute vocabulary and its reader, the reader of text on screen, the face model, the speech recognizer; and the
check that a loaded CLIP is the one the archive's vectors came from."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import cached_property

from ..config import Settings, SpeechConfig, resolve_device
from ..errors import ModelMismatchError
from ..records import ModelIdentity, StoredModel
from ..store import Catalog
from ..threads import prepare_torch

log = logging.getLogger("vidsearch")


class Models:
    def __init__(self, settings: Settings, catalog: Catalog):
        self.settings = settings
        self.catalog = catalog
        self._embedder = None
        self._text_encoder = None
        self._detector = None
        self._vocabulary = None
        self._attribute_readers: dict = {}
        self._text_reader = None
        self._face_model = None
        self._transcribers: dict = {}
        self._precision_settled = False

    @cached_property
    def device(self) -> str:
        # resolved on first model use: "auto" asks torch for a GPU, and a text query needs no torch at all
        prepare_torch()  # before that first import of torch
        return resolve_device(self.settings.device)

    def embedder(self):
        """The CLIP model: the one the archive was built with, unless the caller chose one. Its text tower is
        written to ONNX on first load, for queries without torch."""
        if self._embedder is None:
            from ..embed import ClipEmbedder
            from ..text_export import export_text_tower

            stored = self.catalog.stored_model()
            clip = self.settings.clip
            if stored and not self.settings.clip_chosen:
                clip = replace(clip, model=stored.model, pretrained=stored.pretrained)
            self._embedder = ClipEmbedder(clip, self.device, on_loaded=export_text_tower)
            if stored:
                self._check_identity(stored, self._embedder.identity)
            check = self.int8_check()
            if self._embedder.precision == "int8-if-agrees" and check and check.precision == "int8":
                self._embedder.use_int8()
        return self._embedder

    def worker_clip_config(self):
        """CLIP's settings for workers elsewhere (Ray): exactly this archive's model, in the precision its images
        take here, the int8 check's decision; fp32 where auto has none yet, since workers run no check."""
        embedder = self.embedder()
        if embedder.precision != "int8-if-agrees":
            return embedder.config
        return replace(embedder.config, precision="int8" if embedder.image_precision == "int8" else "fp32")

    def int8_check(self, identity: ModelIdentity | None = None):
        """The archive's recorded comparison of int8 with fp32 image vectors (vidsearch.precision), if it applies
        to the model of `identity` (default: the loaded CLIP); None before the first ingest on a CPU that takes
        int8 where it agrees."""
        from ..precision import PRECISION_KEY, Int8Check

        check = Int8Check.from_json(self.catalog.get_meta(PRECISION_KEY))
        return check if check and check.applies_to(identity or self.embedder().identity) else None

    def settle_precision(self, frames: list, crops: list) -> None:
        """Before an ingest embeds its first images (`frames` and `crops`, RGB arrays): where CLIP takes int8 if it
        agrees and the archive has no decision yet, compare int8 with fp32 on them, record it and follow it."""
        embedder = self.embedder()
        if self._precision_settled or not frames:
            return
        self._precision_settled = True
        if embedder.precision != "int8-if-agrees" or self.int8_check() is not None:
            return
        import json

        from ..precision import PRECISION_KEY, check_int8

        check = check_int8(embedder, self.attribute_reader(), frames, crops, self.settings.clip)
        log.info("int8 check on %d images: %s", check.images, check.to_json())
        self.catalog.set_meta({PRECISION_KEY: json.dumps(check.to_json())})
        if check.precision == "int8":
            embedder.use_int8()

    def text_encoder(self):
        """Query texts to vectors: the text tower of the archive's model, exported to ONNX at ingest, which needs
        neither torch nor the weights file (vidsearch.text_encoder); texts asked before come from a cache."""
        if self._text_encoder is None:
            from ..text_encoder import query_encoder

            chosen = self.settings.clip if self.settings.clip_chosen else None
            self._text_encoder = query_encoder(self.catalog.stored_model(), chosen, self.embedder)
        return self._text_encoder

    def identity(self) -> ModelIdentity:
        """The identity of the archive's vectors, from the loaded CLIP, else from the query encoder (no torch)."""
        return (self._embedder or self.text_encoder()).identity

    @staticmethod
    def _check_identity(stored: StoredModel, ours: ModelIdentity) -> None:
        theirs = stored.identity
        if (theirs.model, theirs.weights) != (ours.model, ours.weights):
            raise ModelMismatchError(
                f"this archive holds vectors of {theirs.model} ({theirs.weights}), "
                f"not of {ours.describe()}: query it with --clip-model {stored.model}"
                + (f" --clip-pretrained {stored.pretrained}" if stored.pretrained else "")
                + ", or ingest into a new --index folder to use another model"
            )

    def record_model(self) -> None:
        """Name the loaded CLIP in the catalog, where no model is named yet: the first video's commit."""
        if self.catalog.stored_model() is None:
            config = self._embedder.config
            self.catalog.record_model(StoredModel(config.model, config.pretrained, self._embedder.identity))

    def calibrated_min_score(self) -> float | None:
        """The score below which this archive's model shows noise rather than matches, where it has been
        measured (scripts/eval_real_model.py says how); None for a model nobody has calibrated."""
        stored = self.catalog.stored_model()
        return self.settings.search.min_score.get(stored.key) if stored else None

    def detector(self):
        if self._detector is None:
            from ..detect import Detector

            self._detector = Detector(self.settings.detector, self.device)
        return self._detector

    def vocabulary(self):
        """The attribute vocabularies of every tracked family in one: what a query's words may name."""
        if self._vocabulary is None:
            from ..things import every_family, query_vocabulary

            self._vocabulary = query_vocabulary(every_family(self.settings))
        return self._vocabulary

    def attribute_reader(self, family: str = "person"):
        """The reader of one family's attributes (persons, vehicles); None for a family without a vocabulary."""
        if family not in self._attribute_readers:
            from ..attributes import AttributeReader
            from ..things import every_family, family_vocabulary

            vocabulary = family_vocabulary(every_family(self.settings)[family])
            self._attribute_readers[family] = vocabulary and AttributeReader(vocabulary, self.embedder())
        return self._attribute_readers[family]

    def text_reader(self):
        """RapidOCR, for text on screen."""
        if self._text_reader is None:
            from ..screen_text import TextReader

            self._text_reader = TextReader(self.settings.screen_text)
        return self._text_reader

    def face_model(self):
        """The face detector and descriptor of the settings' `faces` section (vidsearch.faces)."""
        if self._face_model is None:
            from ..faces import load_face_model

            self._face_model = load_face_model(self.settings.faces)
        return self._face_model

    def transcriber(self, config: SpeechConfig):
        """The speech recognizer of these settings, loaded on first use and kept for every later video."""
        if config not in self._transcribers:
            from ..speech.transcribe import SpeechUnavailable, Transcriber

            try:
                self._transcribers[config] = Transcriber(config, self.device)
            except SpeechUnavailable as error:  # tried once: every later video gets the same reason
                self._transcribers[config] = error
        found = self._transcribers[config]
        if isinstance(found, Exception):
            raise found
        return found

    def close(self) -> None:
        if self._text_encoder is not None:
            self._text_encoder.close()
