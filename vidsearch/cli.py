"""The vidsearch command line: parse options, make one Archive call, print the result."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import click

from . import terminal
from .cli_common import (
    Context, asks_faces, camera_option, checked_query, domain_errors, ingest_arguments, ingest_options, json_option,
    kind_option, speech_options,
)
from .cli_faces import face_query, face_query_options, faces
from .cli_index import index
from .cli_live import record, watch


@click.group()
@click.option("--index", "index_dir", envvar="VIDSEARCH_INDEX", default="./vidsearch-index", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Archive folder: SQLite catalog, Parquet vector shards, FAISS indexes. Env: VIDSEARCH_INDEX.")
@click.option("--clip-model", envvar="VIDSEARCH_CLIP_MODEL",
              help="open_clip model name, or path to a model-config JSON. Default: the archive's model, "
                   "else ViT-B-32. Env: VIDSEARCH_CLIP_MODEL.")
@click.option("--clip-pretrained", envvar="VIDSEARCH_CLIP_PRETRAINED",
              help="open_clip pretrained tag (downloaded on first use) or path to a local weights file. "
                   "Env: VIDSEARCH_CLIP_PRETRAINED.")
@click.option("--yolo-weights", envvar="VIDSEARCH_YOLO_WEIGHTS",
              help="Ultralytics YOLO weights: a name (downloaded on first use) or a local file. Default yolo11n.pt. "
                   "Env: VIDSEARCH_YOLO_WEIGHTS.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True,
              envvar="VIDSEARCH_DEVICE", help="Where models run; auto: CUDA, else Apple MPS, else the CPU.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "int8"]), default="auto", show_default=True,
              envvar="VIDSEARCH_PRECISION",
              help="CLIP's precision; auto: fp16 on CUDA, bf16 on CPUs with AMX, else int8 where a check on the "
                   "archive's own images agrees with fp32. Env: VIDSEARCH_PRECISION.")
@click.option("-v", "--verbose", is_flag=True, help="Log what vidsearch does.")
@click.pass_context
def cli(ctx, index_dir, clip_model, clip_pretrained, yolo_weights, device, precision, verbose):
    """Semantic search over a folder of video: index it once, then find moments and people by describing them.

    Example:

        vidsearch ingest /footage && vidsearch query "man in red jacket with glasses"
    """
    from .config import load_settings

    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings = load_settings(index_dir, clip_model=clip_model, clip_pretrained=clip_pretrained,
                             yolo_weights=yolo_weights, device=device, precision=precision)
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@ingest_options
@speech_options
@camera_option
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Process videos on Ray: alone, starts Ray on this machine; or 'auto' or a cluster address.")
@click.option("--ocr/--no-ocr", default=None,
              help="Read the text on screen of kept frames, for query --text-on-screen (default: the settings' "
                   "screen_text.enabled, off as shipped).")
@click.option("--track", metavar="CLASS,...",
              help="Classes tracked into appearances in this call, e.g. person,car,bus (default: the settings' "
                   "detector labels: person, car, truck, bus, motorcycle, bicycle).")
@click.option("--faces/--no-faces", default=None,
              help="Find, describe and group faces (biometric data; default: the settings' faces.enabled, off).")
@json_option
@click.pass_obj
@domain_errors
def ingest(
    obj: Context, paths, fps, persons, sample, reader, tz, time_from, speech, asr_model, language, camera, ray_address,
    ocr, track, faces, as_json,
):
    """Index the videos in PATHS (files or folders); only new or changed files are processed.

    A file that cannot be read is reported on one line and recorded as failed; the rest goes on, and the
    exit code is 3. An interrupted ingest (Ctrl-C, kill) resumes where it stopped when run again. With --json,
    progress events are printed one JSON object per line, the last one {"event": "done", ...} with the totals.

    Example:

        vidsearch ingest /footage --fps 2
    """
    from .progress import IngestProgress, json_line

    from .things import tracked_option

    options = {
        **ingest_arguments(fps, persons, sample, reader, tz, time_from, camera), "ray_address": ray_address, "ocr": ocr,
        "track": tracked_option(track) if track is not None else None, "faces": faces,
        "speech": speech, "asr_model": asr_model, "language": language,
    }
    try:
        if as_json:
            report = obj.archive().ingest(paths, **options, on_event=json_line)
            json_line({"event": "done", **report.to_json()})
            sys.exit(3 if report.failed else 0)
        with IngestProgress(enabled=sys.stderr.isatty()) as progress:
            report = obj.archive().ingest(paths, **options, on_event=progress)
    except KeyboardInterrupt:
        click.echo("vidsearch: interrupted; run the same command again to resume", err=True)
        sys.exit(130)
    speed = report.video_seconds / report.wall_seconds if report.wall_seconds else 0.0
    click.echo(
        f"indexed {report.indexed} videos ({report.frames} frames, {report.frames_skipped} duplicates skipped, "
        f"{report.persons} persons, {report.person_vectors} crops embedded; {report.video_seconds:.0f} s of video "
        f"in {report.wall_seconds:.1f} s, {speed:.1f}x realtime); {report.unchanged} unchanged, "
        f"{len(report.failed)} failed"
    )
    sys.exit(3 if report.failed else 0)


@cli.command()
@click.argument("text", required=False)
@click.option("-k", type=click.IntRange(1, 10_000), default=20, show_default=True, help="How many hits.")
@kind_option("Search whole frames, tracked things (a family: person, vehicle; or a class: car, bus...), what was "
             "said (speech), or all; with --said, all fuses picture and speech hits by reciprocal rank.")
@click.option("--said", metavar="WORDS",
              help='Words and "quoted phrases" spoken in the video (stemmed: "parked" finds "park").')
@click.option("--within", type=click.FloatRange(min=0), metavar="SECONDS",
              help="With TEXT and --said: only picture hits with the words spoken this close in the same video.")
@click.option("--tolerant", is_flag=True,
              help="--said also finds spoken words alike in letters or sound (words the recognizer misheard).")
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Query by example: hits that look like this picture.")
@click.option("--like", type=int, metavar="ID", help="More like this hit (an id from earlier results).")
@click.option("--min-score", type=float, default=None,
              help="Leave out hits scoring below this. Default: the model's calibrated threshold where one is known.")
@click.option("--video", "video_glob", metavar="GLOB", help="Only videos whose path (or its end) matches, e.g. 'cam3/*.mp4'.")
@click.option("--from", "start", type=float, metavar="SECONDS", help="Only hits at least this far into their video.")
@click.option("--to", "end", type=float, metavar="SECONDS", help="Only hits at most this far into their video.")
@click.option("--object", "objects", multiple=True, metavar="LABEL",
              help="Only frames showing this detector class (car, bicycle, backpack... COCO names); repeatable.")
@click.option("--camera", "cameras", multiple=True, metavar="NAME",
              help="Only videos of this camera (a glob: 'cam*'); repeatable.")
@click.option("--after", metavar="WHEN", help="Only hits at or after this ISO date or date and time (in --tz).")
@click.option("--before", metavar="WHEN", help="Only hits before this ISO date or date and time (in --tz).")
@click.option("--hours", metavar="HH:MM-HH:MM", help="Only hits at this time of day (in --tz), e.g. 22:00-06:00.")
@click.option("--tz", metavar="ZONE", help="IANA zone of --after, --before and --hours (default: this machine's).")
@click.option("--not", "exclude", multiple=True, metavar="TEXT",
              help="Push down hits matching TEXT (repeatable); in TEXT itself, -word or -\"some words\" does the same.")
@click.option("--group/--no-group", default=True, show_default=True,
              help="Merge frame hits close in time into moments and a person's crops into one appearance; "
                   "--no-group: every matching frame and crop is its own hit.")
@click.option("--text-on-screen", "on_screen", metavar="TEXT",
              help="Frames where TEXT is read on screen (ingest --ocr), tolerant of O/0, I/1 and spaces; with TEXT, "
                   "--image or --like, only hits where it is read.")
@click.option("--timings", "show_timings", is_flag=True,
              help="Say where the time of a text query went: on stderr, or as \"timings\" in the --json output.")
@face_query_options
@json_option
@click.pass_obj
@domain_errors
def query(obj: Context, text, k, kind, said, within, tolerant, image, like, min_score, video_glob, start, end, objects,
          cameras, after, before, hours, tz, exclude, group, on_screen, show_timings, face_picture, face_box, like_face,
          who, as_json):
    """Find moments and persons matching TEXT (or looking like --image, or like hit --like) across the archive.

    Person hits are appearances: a person's span in a video, shown at the moment that matches best, with
    the attributes the query names (colours, garments, glasses...) and how strongly the person shows them.

    Example:

        vidsearch query "man in red jacket with glasses -bicycle" --kind person -k 5 --json

        vidsearch query --text-on-screen "KX 4471"

        vidsearch query "man in red jacket" --said '"evidence bag"' --within 10
    """
    if asks_faces(text, image, like, face_picture, face_box, like_face, who):
        return face_query(obj.archive(), k, face_picture, face_box, like_face, who, as_json)
    text, said = checked_query(text, kind, said, within, image, like, on_screen, show_timings)
    given = any(way is not None for way in (text, image, like))  # else --said or --text-on-screen alone
    before_command, opening = terminal.process_seconds(), time.perf_counter()
    archive = obj.archive()
    open_ms, timings = (time.perf_counter() - opening) * 1000, {} if show_timings else None
    from .clock import clock_filter
    from .search import SearchFilter

    where = SearchFilter(
        videos=video_glob, start=start, end=end, objects=objects, min_score=min_score, cameras=cameras,
        **clock_filter(after, before, hours, tz), screen_text=on_screen if given else None,
    )
    options = {"k": k, "kind": kind, "exclude": exclude, "group": group, "where": where}
    if said is not None:
        hits = archive.query_said(text, said, within=within, tolerant=tolerant, **options)
    elif not given:
        hits = archive.query_screen_text(on_screen, k=k, where=where)
    elif image is not None:
        hits = archive.query_image(image, **options)
    elif like is not None:
        hits = archive.query_like(like, **options)
    else:
        hits = archive.query(text, **options, timings=timings)
    unclocked = archive.left_out_without_clock(where)
    if as_json:
        asked = (
            {"image": str(image)} if image is not None else {"like": like} if like is not None
            else text if text is not None or said is not None else {"text_on_screen": on_screen}
        )
        timed = {"timings": {key: round(ms, 2) for key, ms in timings.items()}} if show_timings else {}
        left_out = {"left_out_without_time": unclocked} if where.clocked else {}
        spoken = terminal.said_json(text, said, kind, within)
        click.echo(json.dumps(
            {"query": asked, **spoken, "hits": [hit.to_json() for hit in hits], **left_out, **timed}, indent=1
        ))
        return
    if unclocked:
        click.echo(f"vidsearch: {unclocked} videos without a clock time were left out", err=True)
    if not hits:
        floor = min_score if min_score is not None else archive.calibrated_min_score()
        click.echo("no good match: no hits" + (f" scoring {floor} or more" if floor is not None else ""))
    terminal.print_hits(hits)
    if show_timings:
        terminal.print_timings(before_command, open_ms, timings)


@cli.command()
@click.argument("hit_id", metavar="ID", type=int)
@json_option
@click.pass_obj
@domain_errors
def describe(obj: Context, hit_id, as_json):
    """Show what the archive knows of a hit (an id from query results): where, when, and for a person the
    span of their appearance and the probability of each attribute.

    Example:

        vidsearch describe 1234
    """
    described = obj.archive().describe(hit_id).to_json()
    if as_json:
        click.echo(json.dumps(described, indent=1))
        return
    terminal.print_description(described)


@cli.command("eval")
@click.argument("manifests", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder the manifests' video paths are relative to.")
@click.option("-k", type=click.IntRange(1, 1000), default=10, show_default=True, help="Hits retrieved per query.")
@json_option
@click.pass_obj
@domain_errors
def eval_command(obj: Context, manifests, root, k, as_json):
    """Measure retrieval quality (Recall@1/5/10, MRR, person box match) on labeled query sets.

    Each set is scored as its queries' targets say, then against frames only, persons only and both fused.

    Example:

        vidsearch eval ../shared/eval/dev/*.json --root ../shared/videos
    """
    outcomes = obj.archive().evaluate(manifests, root, k=k)
    if as_json:
        click.echo(json.dumps([outcome.to_json() for outcome in outcomes], indent=1))
        return
    terminal.print_eval(outcomes)


@cli.command()
@json_option
@click.pass_obj
@domain_errors
def stats(obj: Context, as_json):
    """What the archive holds: videos, frames, persons, failures, model and index sizes.

    Example:

        vidsearch stats --json
    """
    result = obj.archive().stats().to_json()
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    terminal.print_stats(result)


@cli.command()
@click.option("--track", metavar="CLASS,...",
              help="Classes to track (default: the settings' tracked classes: person, car, truck, bus, motorcycle, "
                   "bicycle).")
@json_option
@click.pass_obj
@domain_errors
def retrack(obj: Context, track, as_json):
    """Track classes that indexed videos kept only as objects per frame (vehicles, in an archive made before they
    were tracked) into appearances, from the detections already stored: no detector runs and no frame is embedded
    again; a video is decoded only if it holds such detections, up to the last of them. Exit code 3 when a video
    could not be retracked (each is named on stderr).

    Example:

        vidsearch retrack --track car,truck,bus
    """
    from .progress import printable
    from .things import tracked_option

    def on_video(path: Path, outcome: int | str) -> None:
        if isinstance(outcome, str):
            click.echo(f"vidsearch: skipped {printable(str(path))}: {outcome}", err=True)
        elif not as_json:
            click.echo(f"retracked {printable(str(path))}: {outcome} appearances")

    report = obj.archive().retrack(tracked_option(track) if track is not None else None, on_video)
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        click.echo(
            f"retracked {report.videos} videos ({report.appearances} appearances, {report.crops} crops embedded) "
            f"in {report.wall_seconds:.1f} s; {report.unchanged} unchanged, {len(report.failed)} failed"
        )
    sys.exit(3 if report.failed else 0)


@cli.command()
@click.pass_obj
@domain_errors
def prune(obj: Context):
    """Forget videos whose files no longer exist.

    Example:

        vidsearch prune
    """
    gone = obj.archive().prune()
    for path in gone:
        click.echo(f"removed {path}")
    click.echo(f"{len(gone)} videos removed")


@cli.command()
@click.pass_obj
@domain_errors
def upgrade(obj: Context):
    """Upgrade the archive's catalog to this version of vidsearch (keeps every row).

    Example:

        vidsearch --index ./vidsearch-index upgrade
    """
    from .archive import upgrade_archive

    before, after = upgrade_archive(obj.settings.archive)
    click.echo(f"schema {before} -> {after}" if before != after else f"schema already at {after}")


@cli.command()
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--query", "text", help="Export the hits of this query instead of hits by id.")
@click.option("-k", type=click.IntRange(1, 1000), default=10, show_default=True, help="Hits exported with --query.")
@kind_option("With --query: search whole frames, tracked things (person, vehicle, car...), or all.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to export into.")
@click.option("--pad", type=click.FloatRange(0, 600), default=3.0, show_default=True,
              help="Seconds of video kept before and after each hit (or its span).")
@json_option
@click.pass_obj
@domain_errors
def export(obj: Context, ids, text, k, kind, out, pad, as_json):
    """Export hits (ids from earlier results, or a --query's hits): per hit a frame-accurate MP4 clip, the frame,
    the person's crop, the frame with boxes drawn and an evidence record (source SHA-256, times, model); and a
    contact sheet of them all. A hit that cannot be exported gets one line on stderr; the rest is exported.

    Example:

        vidsearch export 1234 1240 --out ./evidence --pad 5
    """
    if bool(ids) == (text is not None):
        raise click.UsageError("give hit IDs or --query TEXT")
    archive = obj.archive()
    hits = archive.query(text, k=k, kind=kind) if text is not None else list(ids)
    report = archive.export(hits, out, pad=pad, query=text)
    for problem in report.problems:
        click.echo(f"vidsearch: not exported: {problem}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=1))
    elif report.exported:
        click.echo(f"exported {len(report.exported)} hits to {out} (contact sheet: {report.sheet})")
    if not report.exported:
        raise click.ClickException("nothing was exported")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any other than loopback needs --token.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="Port to listen on.")
@click.option("--token", envvar="VIDSEARCH_TOKEN",
              help="Secret that every API request must carry (X-Vidsearch-Token header, Bearer or ?token=). "
                   "Env: VIDSEARCH_TOKEN.")
@click.pass_obj
@domain_errors
def serve_command(obj: Context, host, port, token):
    """Serve the search page and its JSON API (documented at /docs), with the models and indexes kept loaded.

    Example:

        vidsearch serve --port 8765    # then open http://127.0.0.1:8765/
    """
    from .serve import check_bind, serve

    check_bind(host, token)  # refused before minutes go into loading models
    serve(obj.archive(), host, port, token, on_ready=lambda url: click.echo(f"vidsearch: serving {url}", err=True))


cli.add_command(watch)
cli.add_command(record)
cli.add_command(faces)
cli.add_command(index)


def main() -> None:
    cli(prog_name="vidsearch")
