"""What an archive holds (stats) and how well it answers labeled queries (eval)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from ..config import Settings, choose_device
from ..errors import ConfigError
from ..records import Hit
from ..reports import ArchiveStats, EvalOutcome, PartialVideo
from ..store import Catalog
from ..store.faces import FaceCatalog
from .indexes import Indexes
from .models import Models
from .searcher import SearchKind, Searcher


class Inventory:
    def __init__(self, settings: Settings, catalog: Catalog, models: Models, indexes: Indexes, searcher: Searcher):
        self.settings = settings
        self.folder = settings.archive
        self.catalog = catalog
        self.models = models
        self.indexes = indexes
        self.searcher = searcher

    def stats(self) -> ArchiveStats:
        counts = self.catalog.counts()
        stored = self.catalog.stored_model()
        return ArchiveStats(
            folder=self.folder, videos=counts["videos"], frames=counts["frames"], persons=counts["persons"],
            appearances=counts["appearances"], video_seconds=counts["video_seconds"],
            failed=[(v.path, v.error or "") for v in self.catalog.videos(status="failed")],
            partial=[
                PartialVideo(v.path, v.duration, v.declared_duration)
                for v in self.catalog.videos(status="indexed") if v.cut_short
            ],
            model=stored.to_json() if stored else None, index=self.indexes.files(), device=self._device(),
            cameras=self.catalog.cameras(), precision=self._precision(stored),
            tracked=self.catalog.appearances_per_label(), faces=FaceCatalog(self.catalog.engine).counts(),
        )

    def _precision(self, stored) -> dict:
        """The --precision setting, and where the archive's int8 check ran, its figures and decision."""
        check = self.models.int8_check(stored.identity) if stored else None
        return {"setting": self.settings.clip.precision, "int8_check": check.to_json() if check else None}

    def _device(self) -> dict:
        """Where the models would run with these settings, and why."""
        try:
            device, reason = choose_device(self.settings.device)
        except ConfigError as error:
            device, reason = "unavailable", str(error)
        return {"setting": self.settings.device, "device": device, "reason": reason}

    def evaluate(self, manifests: Sequence[Path], root: Path, k: int = 10) -> list[EvalOutcome]:
        from ..evaluate import evaluate, load_manifest

        loaded = [load_manifest(Path(m)) for m in manifests]
        indexed = [v.path for v in self.catalog.videos(status="indexed")]
        root = Path(os.path.abspath(root))
        outcomes = []
        for manifest in loaded:
            texts = sorted({q.text for q in manifest.queries})
            vectors = dict(zip(texts, self.models.text_encoder().embed_texts(texts)))
            vocabulary = self.models.vocabulary()

            # a query's target search is one of the three modes below: each search runs once
            @cache
            def search(text: str, kind: SearchKind, n: int) -> list[Hit]:
                return self.searcher.search_vectors(vectors[text][None], n, kind, mentions=vocabulary.mentions(text))[0]

            report = evaluate(manifest, search, k)
            # the same queries against frames alone, persons alone, and both ranked together
            modes = {
                mode: evaluate(manifest, lambda text, _, n, kind=kind: search(text, kind, n), k)
                for mode, kind in (("frames", "frame"), ("persons", "person"), ("fused", "all"))
            }
            named = sorted({r.video for q in manifest.queries for r in q.relevant})
            not_indexed = tuple(v for v in named if (root / v) not in indexed)
            outcomes.append(EvalOutcome(report=report, modes=modes, not_indexed=not_indexed))
        return outcomes
