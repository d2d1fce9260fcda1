"""The Archive: the one object that users script and the CLI and the server call. A thin facade: each call goes to
the service that does that job (vidsearch.services), built by the composition root (vidsearch.compose)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from .compose import build_services
from .config import Settings
from .errors import ArchiveError
from .events import IngestEvent
from .export import ExportReport, PlayableVideo
from .faces.records import FaceGroup, FaceHit
from .records import Box, Hit, Kind
from .reports import ArchiveStats, Description, EvalOutcome, IndexReport, IngestReport
from .search import EVERYTHING, SearchFilter
from .services.indexes import KINDS
from .services.retracker import RetrackReport
from .services.searcher import SearchKind
from .speech.records import SpeechHit
from .store import Catalog


class Archive:
    """A folder holding the catalog (SQLite), the vectors (Parquet shards) and the FAISS indexes.

    Models load on first use and stay loaded; the indexes load on first search or ingest and are
    checked against the catalog, which is the record of what is indexed.
    """

    def __init__(self, settings: Settings):
        self.services = build_services(settings)
        self.settings = settings
        self.folder = settings.archive
        self.catalog = self.services.catalog
        self.shards = self.services.shards

    @classmethod
    def open(cls, folder: str | Path, **options) -> Archive:
        """An archive folder with the defaults and the given options (clip_model, clip_pretrained, yolo_weights, device,
        precision)."""
        from .config import load_settings

        return cls(load_settings(Path(folder), **options))

    def close(self) -> None:
        self.services.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- models (loaded on first use) -----------------------------------------------------------------

    def embedder(self):
        """The CLIP model: the one the archive was built with, unless the caller chose one."""
        return self.services.models.embedder()

    def text_encoder(self):
        """Query texts to vectors, without torch where the archive's text tower was exported."""
        return self.services.models.text_encoder()

    def detector(self):
        return self.services.models.detector()

    def vocabulary(self):
        """The attribute vocabulary: what is asked of every person, and how queries name the answers."""
        return self.services.models.vocabulary()

    # --- ingest ---------------------------------------------------------------------------------------

    def ingest(
        self, paths: Iterable[Path], *, fps: float | None = None, persons: bool = True, sample: str | None = None,
        reader: str | None = None, ray_address: str | None = None, camera: str | None = None,
        tz: str | None = None, time_from_mtime: bool = False, roots: Iterable[Path] | None = None,
        speech: bool | None = None, asr_model: str | None = None, language: str | None = None,
        on_event: Callable[[IngestEvent], None] = lambda event: None, ocr: bool | None = None,
        time_from_overlay: bool = False, track: Sequence[str] | None = None, faces: bool | None = None,
    ) -> IngestReport:
        """Index new and changed videos under `paths`; unchanged ones are skipped, bad ones recorded as failed.

        `sample` is "time" (frames nearest to each 1/fps step) or "keyframes" (keyframes only, coarse and fast);
        `reader` is "pyav", "decord" or "auto". With `ray_address` ("local", "auto" or a cluster address)
        videos are processed on Ray workers. Each video's camera is `camera`, else the settings' pattern, else the
        first folder under the path (or of `roots`, where given) that holds it; its start time comes from its name (local names in the IANA
        zone `tz`, default the machine's), else its container's metadata, else, with `time_from_mtime`, its mtime,
        or with `time_from_overlay`, the date and time drawn on its picture. What is said in a video with sound is
        transcribed unless `speech` is False, by the faster-whisper model `asr_model` (a name or a local folder;
        default: the settings'), in `language` (default: detected). `ocr` reads the text on screen of kept frames
        (default: the settings' screen_text.enabled). `track` names the classes tracked into appearances in this
        call (default: the settings' detector labels). With `faces` (default: the settings' `faces.enabled`), faces
        in kept frames are found, described and stored.
        """
        return self.services.ingester.ingest(
            paths, fps=fps, persons=persons, sample=sample, reader=reader, ray_address=ray_address, camera=camera,
            tz=tz, time_from_mtime=time_from_mtime, roots=roots, speech=speech, asr_model=asr_model,
            language=language, on_event=on_event, ocr=ocr, time_from_overlay=time_from_overlay, track=track,
            faces=faces,
        )

    def retrack(
        self, classes: Sequence[str] | None = None, on_video: Callable[[Path, int | str], None] = lambda p, n: None,
    ) -> RetrackReport:
        """Track `classes` (default: the settings' tracked classes: persons and vehicles) in indexed videos that kept
        them only as objects per frame, from the stored detections (see services.retracker)."""
        return self.services.retracker.retrack(classes, on_video)

    def prune(self, under: Iterable[Path] | None = None) -> list[Path]:
        """Forget videos whose files are gone (in the folders `under`, where given); returns their paths."""
        return self.services.ingester.prune(under)

    # --- indexes --------------------------------------------------------------------------------------

    def indexes(self) -> dict[Kind, object]:
        """The FAISS indexes, brought into agreement with the catalog (the index files are derived data)."""
        return self.services.indexes.load()

    def save_indexes(self) -> None:
        """Write the changed indexes and mark them in step with the catalog."""
        self.services.indexes.save()

    def build_index(
        self, index_kind: str | None = None, memory_budget: int | None = None, vectors: Sequence[Kind] = KINDS
    ) -> dict[Kind, IndexReport]:
        """Build the frame and/or person index anew from the Parquet shards: `index_kind` ("flat", "ivf-pq",
        "ivf-sq8") or chosen for the number of vectors and the memory budget (bytes); each report carries the
        recall@10 measured against exact search."""
        return self.services.indexes.build(index_kind, memory_budget, vectors)

    def rebuild_index(self) -> dict[Kind, IndexReport]:
        """Recreate every index from the Parquet shards, each of the kind it was, where that still fits its size."""
        return self.services.indexes.rebuild()

    def index_report(self, kind: Kind) -> IndexReport:
        return self.services.indexes.report(kind)

    # --- search ---------------------------------------------------------------------------------------

    def query(
        self, text: str, k: int = 20, kind: SearchKind = "all", exclude: Sequence[str] = (), group: bool = True,
        where: SearchFilter = EVERYTHING, timings: dict[str, float] | None = None,
    ) -> list[Hit]:
        """Ranked moments and person appearances for a description in plain words.

        `-word` or `-"some words"` in the text, and phrases in `exclude`, push their matches down; attributes
        the text names ("red jacket", "glasses") add each person's probability for them to its score, as evidence.
        With `group=False`, every matching frame and crop is its own hit. `where` limits hits to some videos,
        a time range, a minimum score (by default the model's calibrated one, where it is known).

        `timings`, where given, receives milliseconds: model_load_ms (the text encoder, on a process's first
        query of a new text), encode_ms, index_load_ms (on the first search), search_ms (FAISS), fetch_ms (the
        hits' meaning from the catalog) and total_ms.
        """
        found = self.services.searcher.query(text, k, kind, exclude, group, where)
        if timings is not None:
            timings.update(found.timings)
        return found.hits

    def query_screen_text(self, text: str, k: int = 20, where: SearchFilter = EVERYTHING) -> list[Hit]:
        """Frames where `text` is read on screen (ingest with ocr), tolerant of OCR's confusions; each hit's box is the
        text's and `hit.screen_text` what was read. To narrow a picture query instead, give `where.screen_text`."""
        return self.services.searcher.query_screen_text(text, k, where)
    def query_said(
        self, text: str | None, said: str, k: int = 20, kind: str = "all", within: float | None = None,
        tolerant: bool = False, exclude: Sequence[str] = (), group: bool = True, where: SearchFilter = EVERYTHING,
    ) -> list[Hit | SpeechHit]:
        """Search what was said: the words and "quoted phrases" of `said` (stemmed: "parked" finds "park").

        Alone, or with `kind` "speech": speech hits at their matched words. With a picture query `text` and
        `within` seconds: its hits that have the words spoken that close in the same video, each carrying them.
        With `text` and no `within`: picture and speech hits fused by reciprocal rank (services.speech.FUSION).
        `tolerant` also admits spoken words alike in letters or sound, for words the recognizer misheard.
        """
        return self.services.speech.query(text, said, k, kind, within, tolerant, exclude, group, where)

    def transcript(self, video: Path, start: float, end: float):
        """What was said in an indexed video between two times (seconds), segment by segment with timed words."""
        return self.services.speech.transcript(video, start, end)

    def subtitles(self, video: Path, start: float, end: float) -> str:
        """WebVTT of what was said in a video between two source times, in a player's time (0 at `start`)."""
        return self.services.speech.subtitles(video, start, end)

    def query_image(
        self, path: Path, k: int = 20, kind: SearchKind = "all", exclude: Sequence[str] = (), group: bool = True,
        where: SearchFilter = EVERYTHING,
    ) -> list[Hit]:
        """Ranked moments and persons that look like a picture (a photo of a suspect, a screenshot)."""
        return self.services.searcher.query_image(path, k, kind, exclude, group, where)

    def query_like(
        self, hit_id: int, k: int = 20, kind: SearchKind = "all", exclude: Sequence[str] = (), group: bool = True,
        where: SearchFilter = EVERYTHING,
    ) -> list[Hit]:
        """More like an indexed frame or person (an `id` from query results), leaving out the moment or
        appearance the example belongs to: for a person, where else they appear."""
        return self.services.searcher.query_like(hit_id, k, kind, exclude, group, where)

    def search_vectors(
        self, vectors: np.ndarray, k: int = 20, kind: SearchKind = "all", group: bool = True,
        mentions: Sequence = (), keep: Callable[[Hit], bool] = lambda hit: True, where: SearchFilter = EVERYTHING,
    ) -> list[list[Hit]]:
        """Ranked hits for each query vector (rows of `vectors`, in the archive's embedding space).

        With `group`, frame hits close in time merge into moments and person hits into appearances; the
        index is asked for more candidates until k groups are found or the index has no more. A filter
        that names few vectors (some videos, a time range) is searched exactly over just those, read from
        their videos' shards; a broad one filters the index's candidates.
        """
        return self.services.searcher.search_vectors(vectors, k, kind, group, mentions, keep, where)

    def calibrated_min_score(self) -> float | None:
        """The score below which this archive's model shows noise rather than matches, where it has been
        measured (scripts/eval_real_model.py says how); None for a model nobody has calibrated."""
        return self.services.models.calibrated_min_score()

    def left_out_without_clock(self, where: SearchFilter) -> int:
        """How many videos a filter on clock time leaves out because their start is unknown."""
        return self.services.searcher.left_out_without_clock(where)

    def describe(self, hit_id: int) -> Description:
        """What the archive knows of a hit: where and when, and for a person, their appearance and attributes.
        An id that names nothing raises NotFoundError."""
        return self.services.searcher.describe(hit_id)

    # --- faces (opt-in at ingest) ----------------------------------------------------------------------

    def query_face(self, picture: Path, box: Box | None = None, k: int = 20) -> list[FaceHit]:
        """Appearances showing the person whose face is the picture's largest (or the one in `box`), across all
        videos, closest first; faces farther than the face model's threshold are left out."""
        return self.services.faces.search_picture(picture, box, k)

    def query_like_face(self, face_id: int, k: int = 20) -> list[FaceHit]:
        """Where else the person of an indexed face (the `id` of a face hit) appears."""
        return self.services.faces.like(face_id, k)

    def query_who(self, name: str, k: int = 20) -> list[FaceHit]:
        """The appearances of the person given this name (`name_face_group`)."""
        return self.services.faces.who(name, k)

    def query_face_group(self, group: int, k: int = 20) -> list[FaceHit]:
        """The appearances of one person (a group that `face_groups` lists), each at its clearest face."""
        return self.services.faces.members([group], k)

    def face_groups(self) -> list[FaceGroup]:
        """The people in the archive's faces: new faces join their group or form new ones; existing groups stay."""
        return self.services.faces.groups()

    def name_face_group(self, group: int, name: str) -> None:
        self.services.faces.name(group, name)

    def forget_faces(self, groups: Sequence[int] | None = None) -> int:
        """Delete face descriptors, groups, names and face thumbnails for good: of `groups`, or all with None;
        returns how many faces were deleted."""
        return self.services.faces.forget(groups)

    def face_thumbnail(self, face_id: int) -> Path:
        return self.services.faces.thumbnail(face_id)

    # --- reports --------------------------------------------------------------------------------------

    def stats(self) -> ArchiveStats:
        return self.services.inventory.stats()

    def evaluate(self, manifests: Sequence[Path], root: Path, k: int = 10) -> list[EvalOutcome]:
        """Retrieval quality on labeled query sets; videos a set names that the archive lacks are listed."""
        return self.services.inventory.evaluate(manifests, root, k)

    # --- hits' pictures, playable video and export (the export command and the web page) ------------------

    def export(
        self, hits: Sequence[Hit | int], out: Path, *, pad: float = 3.0, query: str | dict | None = None
    ) -> ExportReport:
        """Export hits from a search, or ids from earlier results, into `out` (see vidsearch.export).

        A hit's clip covers its span (a moment's or an appearance's start and end) or its instant, +-pad
        seconds. An unknown id, or a source file that is gone or has changed since it was indexed, becomes one
        line in the report's problems; the rest is exported.
        """
        return self.services.media.export(hits, out, pad=pad, query=query)

    def thumbnail(self, hit_id: int) -> Path:
        """A small JPG of a hit (a person's crop, or the whole frame), made on first call and kept in thumbs/."""
        return self.services.media.thumbnail(hit_id)

    def frame_picture(self, hit_id: int) -> Path:
        """The hit's whole frame as a JPG, made on first call and kept in frames/."""
        return self.services.media.frame_picture(hit_id)

    def playable_video(self, hit_id: int, pad: float = 10.0) -> PlayableVideo:
        """The hit's video as a browser plays it: the source file where browsers play its codec, else an H.264
        clip of +-pad seconds around the hit, cut on first call and kept in clips/."""
        return self.services.media.playable_video(hit_id, pad)


def upgrade_archive(folder: Path) -> tuple[str | None, str]:
    """Bring an archive's catalog to this version's schema; returns the revisions before and after."""
    from .store import head_revision

    path = Path(folder) / "catalog.sqlite"
    if not path.exists():
        raise ArchiveError(f"no archive at {folder}")
    catalog = Catalog(path)
    try:
        before = catalog.revision()
        catalog.upgrade()
        return before, head_revision()
    finally:
        catalog.close()
