"""The commands that keep up with live footage: `watch` (folders recorders write into) and `record` (streams)."""

from __future__ import annotations

from pathlib import Path

import click

from . import terminal
from .cli_common import Context, camera_option, domain_errors, ingest_arguments, ingest_options, json_option


@click.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@ingest_options
@camera_option
@click.option("--settle", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Seconds a file must stop growing before it is ingested.")
@click.option("--prune", is_flag=True, help="Forget videos whose files are removed from the folders.")
@click.option("--poll", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds between full rescans, which catch what change events miss (network mounts send none).")
@click.option("--alert", "text_alerts", multiple=True, metavar="NAME=TEXT",
              help="Search each new video for TEXT; matches are alerts named NAME (repeatable).")
@click.option("--alert-image", "image_alerts", multiple=True, metavar="NAME=FILE",
              help="An alert for what looks like a picture (repeatable).")
@click.option("--alert-like", "like_alerts", multiple=True, metavar="NAME=ID",
              help="An alert for what looks like an indexed hit (repeatable).")
@click.option("--alert-min-score", type=float, help="The score an alert's match must reach (required with alerts).")
@click.option("--alert-url", metavar="URL", help="POST each video's alerts as JSON to this URL too.")
@json_option
@click.pass_obj
@domain_errors
def watch(obj: Context, folders, fps, persons, sample, reader, tz, time_from, camera, settle, prune, poll, text_alerts,
          image_alerts, like_alerts, alert_min_score, alert_url, as_json):
    """Keep the archive in step with FOLDERS that recorders write into, until Ctrl-C.

    A new file is ingested once it has stopped growing for --settle seconds, a file that grows after it was
    indexed is indexed again, and with --prune a removed file is forgotten. One line per file (--json: the
    ingest events, one JSON object per line). A restart resumes with nothing lost or doubled.

    Example:

        vidsearch watch /recordings --tz Europe/Berlin --settle 10 --prune
    """
    from .alerts import AlertRule, Alerts
    from .watch import Watcher

    rules = [
        AlertRule.parse(by, given)
        for by, values in (("text", text_alerts), ("image", image_alerts), ("like", like_alerts)) for given in values
    ]
    if rules and alert_min_score is None:
        raise click.UsageError("alerts need --alert-min-score: no calibrated threshold exists for this model yet")
    archive = obj.archive()
    alerts = Alerts(archive, rules, alert_min_score, alert_url) if rules else None

    def on_indexed(paths: list[Path]) -> None:
        if alerts is not None:
            for alert in alerts.check(paths):
                terminal.print_alert(alert, as_json)

    watcher = Watcher(
        archive, folders, settle_s=settle, prune=prune, poll_s=poll,
        ingest_options=ingest_arguments(fps, persons, sample, reader, tz, time_from, camera),
        on_event=terminal.print_watch_event if not as_json else terminal.json_watch_event, on_indexed=on_indexed,
    )
    click.echo(f"vidsearch: watching {', '.join(map(str, folders))} (Ctrl-C stops)", err=True)
    try:
        watcher.run()
    except KeyboardInterrupt:
        click.echo("vidsearch: stopped watching", err=True)


@click.command()
@click.argument("url")
@click.option("--camera", required=True, metavar="NAME", help="The camera: segments go to OUT/NAME/.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder of recordings.")
@click.option("--segment", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds per segment; each is cut at the first keyframe after this.")
@click.option("--index", "index_segments", is_flag=True, help="Ingest each segment as it closes.")
@ingest_options
@json_option
@click.pass_obj
@domain_errors
def record(obj: Context, url, camera, out, segment, index_segments, fps, persons, sample, reader, tz, time_from,
           as_json):
    """Record a stream (RTSP, RTSPS, HTTP, HLS, UDP, SRT: what FFmpeg opens) without re-encoding into MP4 segments
    named by their UTC start, OUT/NAME/2024-05-01_14-00-00.mp4, reconnecting with back-off when it drops, until
    Ctrl-C. With --index each segment is ingested as it closes (ingest's options apply; names are read as UTC).

    Example:

        vidsearch record rtsp://10.0.0.3:554/stream1 --camera gate --out /recordings --segment 300 --index
    """
    from contextlib import nullcontext

    from .record import Recorder, SegmentIndexer

    show = terminal.json_watch_event if as_json else terminal.print_watch_event
    indexer = (
        SegmentIndexer(obj.archive(), out, ingest_arguments(fps, persons, sample, reader, tz, time_from), show)
        if index_segments else None
    )

    def closed(path: Path) -> None:
        terminal.print_segment(path, as_json)
        if indexer is not None:
            indexer.add(path)

    recorder = Recorder(url, camera, out, segment_s=segment, on_segment=closed)
    click.echo(f"vidsearch: recording {url} into {out / camera} (Ctrl-C stops)", err=True)
    with indexer or nullcontext():
        try:
            recorder.run()
        except KeyboardInterrupt:
            recorder.stop()
            click.echo("vidsearch: stopped recording", err=True)
