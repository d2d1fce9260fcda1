"""Ingest speed: vidsearch's pipeline against the naive per-frame loop, in the same run, as a table.

    python scripts/bench_ingest.py --footage ../shared/videos --yolo-weights yolo11n.pt --model ViT-B-32
    python scripts/bench_ingest.py --footage ../shared/videos --files --small-persons 30 --no-baseline
    python scripts/bench_ingest.py --files --clips 3 --no-baseline   # a 3-minute 720p file against its 10 s clips
                                                                     # in one ingest call, and in one call each
    python scripts/bench_ingest.py --footage ../shared/videos --files scenes/car_traffic_bridge.mp4 --ocr --no-baseline
    python scripts/bench_ingest.py --footage ../shared/videos --vehicles --no-baseline

`--small-persons` adds vtest's first seconds pasted unscaled into static 1080p and 4K scenes, a static camera
whose people are far away, each ingested with the detector's tiles as configured and with tiles off.
`--ocr` adds a row per file with the text on screen read (RapidOCR), against the default row of the same run.
`--vehicles` adds two traffic clips and, for every file, a row tracking persons only (`--track person`) beside
the default, which tracks persons and vehicles: what tracking and embedding vehicles costs.

`--faces` adds rows with faces found at ingest, with dlib's HOG and with its MMOD CNN detector, and a table of
what they cost against the default row and the smallest face (shorter side, px) each detector found:

    python scripts/bench_ingest.py --files unit/intel_asl_book.mkv scenes/rknn_people-walking.mp4 --faces --no-baseline

Each row runs in its own process, so its peak RSS is its own. CLIP weights are random (speed does not depend
on their values): `tiny` is the tests' model, `ViT-B-32` the real architecture of the default model.
The naive loop decodes every frame and embeds each one alone, as the blog tool this project grew from did.
Each measured archive first ingests a short clip, so that its one-time int8 check (--precision auto on a CPU without
AMX) is settled before the clock starts; the table's CLIP column says what it decided.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchkit import (
    DEFAULT_YOLO_WEIGHTS, add_footage_option, cut_clips, looped_h264, measured_row, peak_rss_mb, print_table,
    random_weights, timed_process,
)

DEFAULT_FILES = (
    "scenes/opencv_vtest_pets2009.avi",
    "scenes/intel_one-by-one-person-detection.mp4",
    "scenes/rknn_people-walking.mp4",
    "scenes/crowd_walking_1080p.mp4",
)
SETTLE_CLIP = "unit/intel_asl_walk.mkv"  # ingested first into each measured archive, for its int8 check
TRAFFIC_FILES = ("scenes/car_traffic_bridge.mp4", "scenes/rknn_cars-highway.mp4")


def run_pipeline(
    path: Path, clip: tuple[str, str], yolo: str, persons: bool, tiles: str | None, precision: str, settle: Path,
    ocr: bool, track: str | None, face_detector: str | None, per_call: bool = False,
) -> dict:
    from dataclasses import replace

    from vidsearch import Archive
    from vidsearch.config import load_settings

    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(Path(folder), clip_model=clip[0], clip_pretrained=clip[1], yolo_weights=yolo,
                                 device="cpu", precision=precision)
        if tiles is not None:
            settings = replace(settings, detector=replace(settings.detector, tiles=tiles))
        if face_detector is not None:
            settings = replace(settings, faces=replace(settings.faces, enabled=True, detector=face_detector))
        archive = Archive(settings)
        with archive:
            archive.embedder(), archive.detector()  # model loading is not ingest time
            if ocr:
                archive.services.models.text_reader()
            if face_detector is not None:
                archive.services.models.face_model()
            # nor is the archive's one int8 check: a short clip of persons settles it first
            archive.ingest([settle], persons=True, faces=False)
            # a folder's files one `ingest` call each, as `watch` hands over what settled in a round
            reports = [
                archive.ingest([each], persons=persons, ocr=ocr, track=track.split(",") if track else None)
                for each in (sorted(path.iterdir()) if per_call else [path])
            ]
            check = archive.services.models.int8_check()
            image_precision = archive.embedder().image_precision
            faces = smallest_faces(Path(folder) / "catalog.sqlite")
    for report in reports:
        if report.failed:
            raise SystemExit(f"{path}: {report.failed[0][1]}")

    def total(measure) -> float:
        return sum(measure(report) for report in reports)

    return {
        "precision": image_precision, "int8_check": check.to_json() if check else None,
        "video_s": total(lambda r: r.video_seconds), "wall_s": total(lambda r: r.wall_seconds),
        "sampled": total(lambda r: r.frames + r.frames_skipped), "frames": total(lambda r: r.frames),
        "persons": total(lambda r: r.persons), "crops": total(lambda r: r.person_vectors),
        **{f"{stage}_s": total(lambda r, stage=stage: getattr(r.seconds, stage))
           for stage in ("decode", "detect", "embed", "write", "read", "faces")},
        **faces,
    }


def smallest_faces(catalog: Path) -> dict:
    """How many faces the archive holds and the shorter side of the smallest one, px."""
    import sqlite3

    with sqlite3.connect(catalog) as db:
        count, smallest = db.execute("SELECT COUNT(*), MIN(MIN(x2 - x1, y2 - y1)) FROM faces").fetchone()
    return {"faces": count, "smallest_face": smallest}


def run_naive(path: Path, clip: tuple[str, str], seconds_of_video: float) -> dict:
    """Read a frame, run CLIP on it alone, repeat: every frame, for the first `seconds_of_video`."""
    import decord

    from vidsearch.config import ClipConfig
    from vidsearch.embed import ClipEmbedder

    # the blog tool runs plain fp32 PyTorch, one frame at a time
    embedder = ClipEmbedder(ClipConfig(model=clip[0], pretrained=clip[1], batch_size=1, precision="fp32"), "cpu")
    reader = decord.VideoReader(str(path))
    fps = reader.get_avg_fps()
    count = min(len(reader), int(seconds_of_video * fps))
    started = time.perf_counter()
    for _ in range(count):
        embedder.embed_images([reader.next().asnumpy()])
    wall = time.perf_counter() - started
    return {"video_s": count / fps, "wall_s": wall, "sampled": count, "frames": count, "persons": 0, "crops": 0,
            "precision": "fp32"}


def one(args) -> None:
    clip = random_weights(args.model)
    path = Path(args.one)
    if args.naive:
        row = run_naive(path, clip, args.naive_seconds)
    else:
        row = run_pipeline(
            path, clip, args.yolo_weights, args.persons, args.tiles, args.precision, args.footage / SETTLE_CLIP,
            args.read_text, args.track, args.face_detector, args.per_call,
        )
    row["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(row))


def measure(path: Path, args, *extra: str) -> dict:
    return measured_row([sys.executable, __file__, "--one", str(path), "--model", args.model,
                         "--yolo-weights", args.yolo_weights, "--naive-seconds", str(args.naive_seconds),
                         "--precision", args.precision, "--footage", str(args.footage), *extra])


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:7.1f}" if seconds > 0 else "      -"


def whole_commands(args, rounds: int = 1) -> None:
    """`vidsearch ingest` of the first two files as a user runs it; a first run warms the caches (exports,
    vocabulary vectors, the weights' hash), the rounds after it are measured."""
    import av

    clip = random_weights(args.model)
    files = [args.footage / f for f in args.files[:2]]
    video_s = 0.0
    for path in files:
        with av.open(str(path)) as container:
            video_s += float(container.duration) / 1e6
    env = {**os.environ, "YOLO_OFFLINE": "1", "VIDSEARCH_PRECISION": args.precision}
    rows = []
    for n in range(rounds + 1):
        with tempfile.TemporaryDirectory() as folder:
            command = [sys.executable, "-m", "vidsearch", "--index", folder, "--clip-model", clip[0],
                       "--clip-pretrained", clip[1], "--yolo-weights", args.yolo_weights, "--device", "cpu",
                       "ingest", *map(str, files)]
            wall, _ = timed_process(command, env)
        if n:
            rows.append((f"round {n}", f"{video_s:.1f}", f"{wall:.1f}", f"{video_s / wall:.1f}"))
    print(f"vidsearch ingest {' '.join(p.name for p in files)}: model {args.model} (random weights), "
          f"--precision {args.precision}, CPU threads {os.cpu_count()}")
    print_table(("run", "video s", "wall s", "x realtime"), rows, rule=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_footage_option(parser)
    parser.add_argument("--files", nargs="*", default=list(DEFAULT_FILES))
    parser.add_argument("--model", default="ViT-B-32", help="'tiny' or an open_clip architecture (random weights)")
    parser.add_argument("--yolo-weights", default=DEFAULT_YOLO_WEIGHTS)
    parser.add_argument("--long-minutes", type=float, default=0, help="also a file of the clips concatenated")
    parser.add_argument("--naive-seconds", type=float, default=20.0, help="video seconds the naive loop runs on")
    parser.add_argument("--small-persons", type=float, default=0, metavar="SECONDS",
                        help="also vtest's first SECONDS pasted into static 1080p and 4K scenes, tiles on and off")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "int8"])
    parser.add_argument("--clips", type=float, default=0, metavar="MINUTES",
                        help="also a 720p recording of MINUTES and the same cut into 10 s clips, persons on")
    parser.add_argument("--command", action="store_true",
                        help="only time whole `vidsearch ingest` commands (process start to exit, caches warm) of "
                             "the first two files, into a new archive each")
    parser.add_argument("--vehicles", action="store_true",
                        help="also the traffic clips, and a row per file tracking persons only")
    parser.add_argument("--faces", action="store_true", help="also rows with faces found, HOG and CNN detectors")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--ocr", action="store_true", help="also each file with the text on screen read (ingest --ocr)")
    parser.add_argument("--json", action="store_true", help="print rows as JSON lines too")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-persons", dest="persons", action="store_false", help=argparse.SUPPRESS)
    parser.add_argument("--tiles", help=argparse.SUPPRESS)
    parser.add_argument("--read-text", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--track", help=argparse.SUPPRESS)
    parser.add_argument("--face-detector", help=argparse.SUPPRESS)
    parser.add_argument("--per-call", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(args)
    random_weights(args.model)  # made here if missing, not inside the first measured process

    if args.command:
        return whole_commands(args)
    paths = [args.footage / f for f in (*args.files, *(TRAFFIC_FILES if args.vehicles else ()))]
    if args.long_minutes:
        # steady state: the clips one after another at 1280x720
        paths.append(looped_h264(args.footage, args.files, args.long_minutes * 60, (1280, 720), 25, 23,
                                 f"long-{args.long_minutes:g}min.mp4"))
    pasted = {}
    if args.small_persons:
        for size, at in (((1920, 1080), (576, 252)), ((3840, 2160), (1500, 900))):
            name = f"vtest-in-{size[1]}p-{args.small_persons:g}s.mp4"
            pasted[looped_h264(args.footage, [DEFAULT_FILES[0]], args.small_persons, size, 10, 18, name, at)] = at
    paths += list(pasted)
    if args.clips:
        recording = looped_h264(args.footage, list(DEFAULT_FILES), args.clips * 60, (1280, 720), 25, 23,
                                f"recording-{args.clips:g}min.mp4")
        paths += [recording, cut_clips(recording, 10.0)]
    print(f"model {args.model} (random weights), YOLO {Path(args.yolo_weights).name}, CPU threads {os.cpu_count()}")
    header = (f"{'video':38s} {'mode':10s} {'video s':>7s} {'wall s':>7s} {'x real':>7s} {'decode':>7s} "
              f"{'detect':>7s} {'embed':>7s} {'write':>7s} {'frames':>6s} {'dups':>5s} {'tracked':>7s} "
              f"{'crops':>5s} {'wall/mdl':>8s} {'RSS MB':>7s} {'vs naive':>8s} {'CLIP':>5s}")
    print(header)
    print("-" * len(header))
    face_rows = []
    for path in paths:
        rows = [("default", measure(path, args))]
        if args.vehicles:
            rows.append(("persons", measure(path, args, "--track", "person")))
        if path.is_dir():  # the clips: persons on, as the recording they were cut from; and as `watch` hands them
            rows.append(("per call", measure(path, args, "--per-call")))
        elif path in pasted:
            rows.append(("no tiles", measure(path, args, "--tiles", "off")))
        else:
            rows.append(("frames", measure(path, args, "--no-persons")))
        if args.ocr:
            rows.append(("ocr", measure(path, args, "--read-text")))
        if args.faces:
            rows += [(f"faces {name}", measure(path, args, "--face-detector", name)) for name in ("hog", "cnn")]
            face_rows += [(path, mode, row, rows[0][1]) for mode, row in rows if mode.startswith("faces")]
        if not args.no_baseline and not path.is_dir():
            rows.append(("naive", measure(path, args, "--naive")))
        naive_speed = rows[-1][1]["video_s"] / rows[-1][1]["wall_s"] if rows[-1][0] == "naive" else None
        for mode, row in rows:
            speed = row["video_s"] / row["wall_s"]
            model_s = row.get("detect_s", 0) + row.get("embed_s", 0) + row.get("read_s", 0)
            print(
                f"{path.name[:38]:38s} {mode:10s} {row['video_s']:7.1f} {row['wall_s']:7.1f} {speed:7.1f} "
                f"{rate(row['sampled'], row.get('decode_s', 0))} {rate(row['frames'], row.get('detect_s', 0))} "
                f"{rate(row['frames'] + row['crops'], row.get('embed_s', 0))} "
                f"{rate(row['frames'], row.get('write_s', 0))} {row['frames']:6d} "
                f"{row['sampled'] - row['frames']:5d} {row['persons']:7d} {row['crops']:5d} "
                f"{(row['wall_s'] / model_s if model_s else 0):8.2f} {row['peak_rss_mb']:7.0f} "
                f"{(speed / naive_speed if naive_speed else 0):8.1f} {row['precision']:>5s}"
            )
            if row.get("int8_check") and mode == "default":
                check = row["int8_check"]
                print(f"  int8 check on {check['images']} images ({check['crops']} crops): min cosine "
                      f"{check['min_cosine']:.4f}, labels kept {check['label_agreement']:.3f}, prompt order rho "
                      f"{check['rank_correlation']:.4f}, {check['fp32_images_per_s']:.1f} -> "
                      f"{check['int8_images_per_s']:.1f} images/s: {check['precision']}")
            if args.json:
                print(json.dumps({"video": path.name, "mode": mode, **row}))
    print("CLIP: the image tower's precision (auto: int8 where the archive's check agrees)")
    print("decode/detect/embed/write: frames (or images) per second of that stage's own time;"
          " wall/mdl: wall time over detect+embed(+OCR) time; vs naive: x-realtime over the naive loop's")
    if face_rows:
        print_faces(face_rows)


def print_faces(rows: list[tuple[Path, str, dict, dict]]) -> None:
    header = (f"\n{'video':38s} {'mode':10s} {'frames':>6s} {'faces s':>7s} {'ms/frame':>8s} {'faces':>5s} "
              f"{'smallest':>8s} {'wall vs default':>15s}")
    print(header)
    print("-" * len(header))
    for path, mode, row, default in rows:
        smallest = "-" if row["smallest_face"] is None else f"{row['smallest_face']:.0f} px"
        print(f"{path.name[:38]:38s} {mode:10s} {row['frames']:6d} {row['faces_s']:7.1f} "
              f"{1000 * row['faces_s'] / max(row['frames'], 1):8.0f} {row['faces']:5d} {smallest:>8s} "
              f"{row['wall_s'] / default['wall_s']:14.2f}x")
    print("faces s: the face stage's own time (detection in person boxes or whole frames, landmarks, descriptors);"
          " smallest: the shorter side of the smallest face found")


if __name__ == "__main__":
    main()
