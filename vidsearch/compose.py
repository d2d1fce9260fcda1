"""The composition root: builds every service of an archive from its settings, each handed its collaborators, and
picks where the pipeline runs. Nothing else constructs a service; tests and benchmarks may build their own."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .config import Settings
from .pipeline import DecodeWorkers
from .runners import LocalRunner, Runner
from .services.faces import Faces
from .services.indexes import Indexes
from .services.ingester import Ingester
from .services.inventory import Inventory
from .services.media import Media
from .services.models import Models
from .services.retracker import Retracker
from .services.searcher import Searcher
from .services.speech import SpeechSearch
from .services.writes import WriteGuard
from .shards import Shards
from .store import Catalog


@dataclass(frozen=True, slots=True, eq=False)
class Services:
    settings: Settings
    catalog: Catalog  # catalog.sqlite: what every vector means
    shards: Shards  # shards/: the vectors, one Parquet file per video
    writes: WriteGuard  # ingest.lock
    models: Models
    indexes: Indexes  # frame.faiss, person.faiss and their .json and re-rank files
    ingester: Ingester
    retracker: Retracker
    searcher: Searcher
    speech: SpeechSearch  # what was said: the transcripts in the catalog
    media: Media  # thumbs/, frames/, clips/, exports/
    inventory: Inventory
    faces: Faces  # face.faiss and the thumbs/face-*.jpg of faces found with ingest --faces
    decoders: DecodeWorkers  # decode processes, kept from one ingest to the next

    def close(self) -> None:
        self.decoders.close()
        self.catalog.close()
        self.models.close()


def build_services(settings: Settings) -> Services:
    """Open (or create) the archive folder of `settings` and wire its services."""
    folder = settings.archive
    writes = WriteGuard(folder)
    with writes.writing(f"opening the archive {folder}"):
        folder.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(folder / "catalog.sqlite")
        catalog.ensure_schema()
        shards = Shards(folder / "shards")
    models = Models(settings, catalog)
    indexes = Indexes(settings, catalog, shards, models, writes)
    decoders = DecodeWorkers()

    def make_runner(ingest_settings: Settings, ray_address: str | None) -> Runner:
        if ray_address:
            from .distribute import RayRunner

            # workers load exactly the model this archive holds
            return RayRunner(replace(ingest_settings, clip=models.worker_clip_config()), ray_address)
        return LocalRunner(ingest_settings, models, decoders)

    searcher = Searcher(settings, catalog, shards, models, indexes)
    return Services(
        settings=settings, catalog=catalog, shards=shards, writes=writes, models=models, indexes=indexes,
        ingester=Ingester(settings, catalog, shards, models, indexes, writes, make_runner),
        retracker=Retracker(settings, catalog, shards, models, indexes, writes, decoders),
        searcher=searcher, speech=SpeechSearch(catalog, searcher), media=Media(settings, catalog, searcher),
        inventory=Inventory(settings, catalog, models, indexes, searcher),
        faces=Faces(settings, catalog, models, writes), decoders=decoders,
    )
