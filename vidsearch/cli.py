"""The vidsearch command line: parse options, make one Archive call, print the result."""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path

import click

from .errors import VidsearchError


def _format_time(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}"


def json_option(command):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")(command)


def domain_errors(command):
    """Errors of input or environment become one line and exit code 2; anything else is our bug."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except VidsearchError as error:
            raise click.ClickException(str(error)) from None

    return wrapper


class Context:
    """Holds the global options; the Archive is opened only by commands that need it."""

    def __init__(self, settings):
        self.settings = settings
        self._archive = None

    def archive(self):
        if self._archive is None:
            from .archive import Archive

            self._archive = Archive(self.settings)
        return self._archive

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()


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
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              envvar="VIDSEARCH_DEVICE", help="Where models run; auto picks the GPU when there is one.")
@click.option("-v", "--verbose", is_flag=True, help="Log what vidsearch does.")
@click.pass_context
def cli(ctx, index_dir, clip_model, clip_pretrained, yolo_weights, device, verbose):
    """Semantic search over a folder of video: index it once, then find moments and people by describing them.

    Example:

        vidsearch ingest /footage && vidsearch query "man in red jacket with glasses"
    """
    from .config import load_settings

    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings = load_settings(index_dir, clip_model=clip_model, clip_pretrained=clip_pretrained,
                             yolo_weights=yolo_weights, device=device)
    ctx.obj = Context(settings)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), help="Frames sampled per second (default 1).")
@click.option("--persons/--no-persons", default=True, show_default=True, help="Detect and embed persons.")
@click.option("--sample", type=click.Choice(["time", "keyframes"]), default=None,
              help="time: the frame nearest each 1/fps step (default); keyframes: keyframes only, coarse and fast.")
@click.option("--reader", type=click.Choice(["pyav", "decord", "auto"]), default=None,
              help="Decoding library (default pyav); auto: decord, PyAV where decord cannot read a file.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Process videos on Ray: alone, starts Ray on this machine; or 'auto' or a cluster address.")
@json_option
@click.pass_obj
@domain_errors
def ingest(obj: Context, paths, fps, persons, sample, reader, ray_address, as_json):
    """Index the videos in PATHS (files or folders); only new or changed files are processed.

    A file that cannot be read is reported on one line and recorded as failed; the rest goes on.
    An interrupted ingest (Ctrl-C, kill) resumes where it stopped when run again. With --json, progress
    events are printed one JSON object per line, the last one {"event": "done", ...} with the totals.

    Example:

        vidsearch ingest /footage --fps 2
    """
    from .progress import IngestProgress, json_line

    options = {"fps": fps, "persons": persons, "sample": sample, "reader": reader, "ray_address": ray_address}
    try:
        if as_json:
            report = obj.archive().ingest(paths, **options, on_event=json_line)
            json_line({"event": "done", **report.to_json()})
            return
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


@cli.command()
@click.argument("text", required=False)
@click.option("-k", type=click.IntRange(1, 10_000), default=20, show_default=True, help="How many hits.")
@click.option("--kind", type=click.Choice(["all", "frame", "person"]), default="all", show_default=True,
              help="Search whole frames, person crops, or both.")
@click.option("--image", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Query by example: hits that look like this picture.")
@click.option("--like", type=int, metavar="ID", help="More like this hit (an id from earlier results).")
@click.option("--min-score", type=float, default=None, help="Leave out hits scoring below this.")
@json_option
@click.pass_obj
@domain_errors
def query(obj: Context, text, k, kind, image, like, min_score, as_json):
    """Find frames and persons matching TEXT (or looking like --image, or like hit --like) across the archive.

    Example:

        vidsearch query "a red car" --kind frame -k 5 --json
    """
    if sum(given is not None for given in (text, image, like)) != 1:
        raise click.UsageError("give one of TEXT, --image or --like")
    archive = obj.archive()
    if image is not None:
        hits = archive.query_image(image, k=k, kind=kind)
    elif like is not None:
        hits = archive.query_like(like, k=k, kind=kind)
    else:
        hits = archive.query(text, k=k, kind=kind)
    if min_score is not None:
        hits = [hit for hit in hits if hit.score >= min_score]
    if as_json:
        asked = text if text is not None else {"image": str(image)} if image is not None else {"like": like}
        click.echo(json.dumps({"query": asked, "hits": [hit.to_json() for hit in hits]}, indent=1))
        return
    if not hits:
        click.echo("no hits" + (f" scoring {min_score} or more" if min_score is not None else ""))
    for hit in hits:
        box = hit.item.box
        where = f"  box {box.x1:.0f},{box.y1:.0f},{box.x2:.0f},{box.y2:.0f}" if box else ""
        click.echo(f"{hit.rank:3d}  {hit.score:.3f}  {hit.item.kind:6s}  {_format_time(hit.item.t)}  "
                   f"{hit.video}{where}")


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

    Example:

        vidsearch eval ../shared/eval/dev/*.json --root ../shared/videos
    """
    outcomes = obj.archive().evaluate(manifests, root, k=k)
    if as_json:
        click.echo(json.dumps([outcome.to_json() for outcome in outcomes], indent=1))
        return
    click.echo(f"{'set':45s} {'queries':>7s} {'R@1':>6s} {'R@5':>6s} {'R@10':>6s} {'MRR':>6s} {'box@10':>7s}")
    for outcome in outcomes:
        r = outcome.report.to_json()
        box = "-" if r["person_box_match@10"] is None else f"{r['person_box_match@10']:.3f}"
        click.echo(f"{r['name'][:45]:45s} {r['queries']:7d} {r['recall@1']:6.3f} {r['recall@5']:6.3f} "
                   f"{r['recall@10']:6.3f} {r['mrr']:6.3f} {box:>7s}")
        if outcome.not_indexed:
            click.echo(f"  not in this archive: {', '.join(outcome.not_indexed)}", err=True)


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
    click.echo(f"archive   {result['archive']}")
    click.echo(f"videos    {result['videos']} ({result['video_seconds'] / 3600:.2f} h)")
    click.echo(f"frames    {result['frames']}")
    click.echo(f"persons   {result['persons']}")
    model = result["model"]
    click.echo(f"model     {model['identity']['model']} ({model['identity']['weights']})" if model else "model     -")
    for kind, index in result["index"].items():
        click.echo(f"index     {kind}: {index['vectors']} vectors, {index['bytes'] / 2**20:.1f} MiB ({index['factory']})")
    click.echo(f"failed    {len(result['failed'])}")
    for failure in result["failed"]:
        click.echo(f"  {failure['path']}: {failure['reason']}")


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


def main() -> None:
    cli(prog_name="vidsearch")
