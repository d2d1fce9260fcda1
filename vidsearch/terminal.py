"""What the command line prints for people (--json prints the records' own JSON): hits, a hit's description,
evaluation tables, archive stats, index reports, query timings."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from .progress import cut_short, printable


def format_time(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}"


def clock_time(moment) -> str:
    """A hit's wall-clock time as people read it, with its zone's offset; empty where it is unknown."""
    return f"{moment:%Y-%m-%d %H:%M:%S %z}  " if moment is not None else ""


def process_seconds() -> float | None:
    """Seconds since this process started (from Linux's /proc; None elsewhere): what a cold start costs."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22, starttime
    except (OSError, ValueError, IndexError):
        return None
    return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")


def print_timings(before_command: float | None, open_ms: float, timings: dict[str, float]) -> None:
    steps = [("process start", before_command and before_command * 1000), ("open archive", open_ms)]
    steps += [(key.removesuffix("_ms").replace("_", " "), value) for key, value in timings.items()]
    process = process_seconds()
    steps.append(("process", process and process * 1000))
    click.echo("timings (ms): " + ", ".join(f"{name} {ms:.0f}" for name, ms in steps if ms is not None), err=True)


def said_json(text: str | None, said: str | None, kind: str, within: float | None) -> dict:
    """What a query's JSON says of its `said` part: the words, and how picture and speech hits were combined."""
    if said is None:
        return {}
    from .services.speech import FUSION

    fused = text is not None and within is None and kind != "speech"
    return {"said": said, **({"within": within} if within is not None else {}), **({"fusion": FUSION} if fused else {})}


def marked(match) -> str:
    """A speech match's segment text with the matched words in [brackets] (bold on a terminal)."""
    if not match.matched:
        return match.text
    words = [
        click.style(f"[{word.word}]", bold=True, fg="yellow") if i in match.matched else word.word
        for i, word in enumerate(match.words)
    ]
    return " ".join(words)


def print_hits(hits) -> None:
    from .speech.records import SpeechHit

    for hit in hits:
        if isinstance(hit, SpeechHit):
            camera = f"{hit.camera}  " if hit.camera else ""
            match = hit.match
            click.echo(f"{hit.rank:3d}  {hit.score:.3f}  speech  {camera}{clock_time(hit.time)}"
                       f"{format_time(match.start)} ({format_time(match.start)}-{format_time(match.end)})  "
                       f"{hit.video}  id {match.segment_id}")
            click.echo(f'       "{marked(match)}"')
            continue
        box = hit.item.box
        where = f"  box {box.x1:.0f},{box.y1:.0f},{box.x2:.0f},{box.y2:.0f}" if box else ""
        span = f" ({format_time(hit.span[0])}-{format_time(hit.span[1])})" if hit.span else ""
        camera = f"{hit.camera}  " if hit.camera else ""
        what = hit.item.label or hit.item.kind
        click.echo(f"{hit.rank:3d}  {hit.score:.3f}  {what:6s}  {camera}{clock_time(hit.time)}"
                   f"{format_time(hit.item.t)}{span}  {hit.video}{where}  id {hit.item.vector_id}")
        if hit.evidence:
            click.echo("       " + ", ".join(f"{m.label} {m.probability:.2f}" for m in hit.evidence))
        if hit.screen_text is not None:
            within = hit.screen_text.within
            click.echo(f"       text {hit.screen_text.text!r} ({hit.screen_text.confidence:.2f})"
                       + (f" on a {within.label}" if within else ""))
        for match in hit.said:
            click.echo(f'       said at {format_time(match.start)}: "{marked(match)}"')


def print_description(described: dict) -> None:
    box = described["box"]
    camera = f"camera {described['camera']}  " if described.get("camera") else ""
    when = f"{described['time']} ({described['time_source']})  " if described.get("time") else ""
    what = described["label"] or described["kind"]
    click.echo(f"{what} {described['id']}  {camera}{when}{described['video']}  {format_time(described['t'])}"
               + (f"  box {','.join(f'{v:.0f}' for v in box)}" if box else ""))
    appearance = described.get("appearance")
    if appearance is None:
        return
    click.echo(f"{appearance['label']} appearance {appearance['id']}: "
               f"{format_time(appearance['start'])}-{format_time(appearance['end'])}, "
               f"{appearance['detections']} detections, best view id {appearance['best_id']}")
    if not appearance["attributes"]:
        click.echo("no attributes (indexed before attributes were read: ingest the video again)")
    for group, labels in appearance["attributes"].items():
        top = list(labels.items())[:3]
        click.echo(f"  {group:14s} " + "  ".join(f"{label} {p:.2f}" for label, p in top))


def print_eval(outcomes) -> None:
    click.echo(f"{'set':45s} {'queries':>7s} {'R@1':>6s} {'R@5':>6s} {'R@10':>6s} {'MRR':>6s} {'box@10':>7s}")
    for outcome in outcomes:
        rows = [(outcome.report.name[:45], outcome.report)]
        rows += [(f"  {mode}", report) for mode, report in outcome.modes.items()]
        for label, report in rows:
            r = report.to_json()
            box = "-" if r["person_box_match@10"] is None else f"{r['person_box_match@10']:.3f}"
            click.echo(f"{label:45s} {r['queries']:7d} {r['recall@1']:6.3f} {r['recall@5']:6.3f} "
                       f"{r['recall@10']:6.3f} {r['mrr']:6.3f} {box:>7s}")
        if outcome.not_indexed:
            click.echo(f"  not in this archive: {', '.join(outcome.not_indexed)}", err=True)


def print_stats(result: dict) -> None:
    click.echo(f"archive   {result['archive']}")
    click.echo(f"videos    {result['videos']} ({result['video_seconds'] / 3600:.2f} h)")
    click.echo(f"frames    {result['frames']}")
    click.echo(f"persons   {result['persons']}")
    if result["tracked"]:
        click.echo("tracked   " + ", ".join(f"{count} {label}" for label, count in result["tracked"].items()))
    for camera in result["cameras"]:
        click.echo(f"camera    {camera['camera']}: {camera['videos']} videos, {camera['hours']:.2f} h, "
                   f"{camera['vectors']} vectors")
    model = result["model"]
    click.echo(f"model     {model['identity']['model']} ({model['identity']['weights']})" if model else "model     -")
    click.echo(f"device    {result['device']['device']} ({result['device']['reason']})")
    if result.get("precision"):
        print_precision(result["precision"])
    for kind, index in result["index"].items():
        click.echo(f"index     {kind}: {index['vectors']} vectors, {index['bytes'] / 2**20:.1f} MiB ({index['factory']})")
    faces = result["faces"]
    click.echo(
        f"faces     {faces['faces']} faces, {faces['groups']} people ({faces['named']} named): biometric data, "
        "`vidsearch faces forget --all` deletes it" if faces["held"] else "faces     none held"
    )
    click.echo(f"partial   {len(result['partial'])}")
    for video in result["partial"]:
        said = cut_short(video["indexed_seconds"], video["declared_seconds"])
        click.echo(f"  {printable(video['path'])}: {said}")
    click.echo(f"failed    {len(result['failed'])}")
    for failure in result["failed"]:
        click.echo(f"  {printable(failure['path'])}: {printable(failure['reason'])}")


def print_precision(precision: dict) -> None:
    check = precision["int8_check"]
    if check is None:
        click.echo(f"precision {precision['setting']} (no int8 check in this archive)")
        return
    click.echo(
        f"precision {precision['setting']}: images in {check['precision']}; int8 check on {check['images']} images "
        f"({check['crops']} crops): min cosine {check['min_cosine']:.4f} (bound {check['bounds']['min_cosine']}), "
        f"attribute labels kept {check['label_agreement']:.3f} (bound {check['bounds']['label_agreement']}), "
        f"prompt order rho {check['rank_correlation']:.4f} (bound {check['bounds']['rank_correlation']}), "
        f"{check['fp32_images_per_s']:.1f} images/s fp32, {check['int8_images_per_s']:.1f} int8"
    )


def print_index_reports(reports, as_json: bool) -> None:
    rows = [report.to_json() for report in reports.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for row in rows:
        recall = "-" if row["recall@10"] is None else f"{row['recall@10']:.3f} ({row['recall_queries']} queries)"
        built = "-" if row["build_seconds"] is None else f"{row['build_seconds']:.1f} s"
        click.echo(f"{row['vectors']:6s} {row['index']:7s} {row['factory']}  {row['count']} vectors, "
                   f"{row['bytes_per_vector']:.0f} B/vector in RAM, {row['rerank_bytes_on_disk'] / 2**20:.1f} MiB "
                   f"re-rank vectors on disk; recall@10 vs exact {recall}; built in {built}")
        click.echo(f"       {row['reason']}")


def print_watch_event(event) -> None:
    """One line per file for `watch`: indexed, unchanged, failed or removed."""
    from .events import VideoFailed, VideoIndexed, VideoSkipped
    from .watch import VideoRemoved

    path = printable(str(getattr(event, "path", "")))
    if isinstance(event, VideoIndexed):
        click.echo(f"indexed {path} ({event.frames} frames, {event.persons} persons, {event.video_seconds:.0f} s)")
    elif isinstance(event, VideoSkipped):
        click.echo(f"{event.reason} {path}")
    elif isinstance(event, VideoFailed):
        click.echo(f"vidsearch: skipped {path}: {printable(event.reason)}", err=True)
    elif isinstance(event, VideoRemoved):
        click.echo(f"removed {path}")


def json_watch_event(event) -> None:
    from .progress import json_line
    from .watch import VideoRemoved

    json_line({"event": "removed", "path": str(event.path)} if isinstance(event, VideoRemoved) else event)


def print_segment(path: Path, as_json: bool) -> None:
    """A segment `record` closed: a line, or a JSON object."""
    if as_json:
        click.echo(json.dumps({"event": "segment", "path": str(path)}))
    else:
        click.echo(f"segment {printable(str(path))}")


def print_alert(alert: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"event": "alert", **alert}))
        return
    hit = alert["hit"]
    when = hit["time"] or format_time(hit["t"])
    click.echo(f"ALERT {alert['alert']}: {hit['score']:.3f} {hit['kind']} {hit['camera'] or ''} {when} "
               f"{printable(hit['video'])} id {hit['id']}")
