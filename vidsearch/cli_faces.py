"""The face commands of the command line: `faces` (people, naming, forgetting) and query by a face."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli_common import Context, domain_errors, json_option
from .records import Box


class FaceBox(click.ParamType):
    """x1,y1,x2,y2 in the picture's pixels."""

    name = "x1,y1,x2,y2"

    def convert(self, value, param, ctx):
        if isinstance(value, Box):
            return value
        try:
            x1, y1, x2, y2 = (float(part) for part in value.split(","))
        except ValueError:
            self.fail(f"{value!r} is not four numbers x1,y1,x2,y2", param, ctx)
        if x2 <= x1 or y2 <= y1:
            self.fail(f"{value!r}: x2 and y2 must be greater than x1 and y1", param, ctx)
        return Box(x1, y1, x2, y2)


def face_query_options(command):
    """query's options that search faces instead of CLIP vectors."""
    for option in reversed(_FACE_QUERY_OPTIONS):
        command = option(command)
    return command


_FACE_QUERY_OPTIONS = [
    click.option("--face", "face_picture", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="Where the person of this picture's largest face appears (videos with faces indexed: ingest --faces)."),
    click.option("--face-box", type=FaceBox(), help="With --face: the face at this box of the picture, x1,y1,x2,y2."),
    click.option("--like-face", type=int, metavar="ID", help="Where else the person of face hit ID appears."),
    click.option("--who", metavar="NAME", help="Where the person named NAME appears (`vidsearch faces name`)."),
]


def face_query(archive, k: int, face_picture: Path | None, face_box: Box | None, like_face: int | None,
               who: str | None, as_json: bool) -> None:
    """query's face searches: hits of kind face, closest first, within the face model's threshold."""
    if face_box is not None and face_picture is None:
        raise click.UsageError("--face-box needs --face PICTURE")
    if face_picture is not None:
        hits, asked = archive.query_face(face_picture, face_box, k), {"face": str(face_picture)}
        if face_box is not None:
            asked["face_box"] = face_box.as_list()
    elif like_face is not None:
        hits, asked = archive.query_like_face(like_face, k), {"like_face": like_face}
    else:
        hits, asked = archive.query_who(who, k), {"who": who}
    if as_json:
        click.echo(json.dumps({"query": asked, "hits": [hit.to_json() for hit in hits]}, indent=1))
        return
    if not hits:
        click.echo("no face within the face model's threshold")
    for hit in hits:
        row = hit.to_json()
        who_is = f"  person {row['group']}" + (f" ({row['name']})" if row["name"] else "") if row["group"] else ""
        click.echo(f"{hit.rank:3d}  {hit.distance:.3f}  face  {row['camera'] or ''}  {row['time'] or ''}  "
                   f"{row['t']:.1f} s ({row['start']:.1f}-{row['end']:.1f})  {row['video']}  "
                   f"box {','.join(f'{v:.0f}' for v in row['box'])}  id {row['id']}{who_is}")


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
@domain_errors
def faces(ctx, as_json):
    """The people in the archive's faces: each group with its size, the videos and cameras it was seen in, and when.

    New faces join the nearest group within the threshold, or form new groups; groups and names stay.

    Example:

        vidsearch faces --json && vidsearch faces name 3 "Ada" && vidsearch query --who "Ada"
    """
    if ctx.invoked_subcommand is not None:
        return
    groups = ctx.find_object(Context).archive().face_groups()
    if as_json:
        click.echo(json.dumps([group.to_json() for group in groups], indent=1))
        return
    if not groups:
        click.echo("no faces: ingest with --faces to find them")
    for group in groups:
        row = group.to_json()

        def seen(at: dict) -> str:
            return at["time"] or f"{Path(at['video']).name} {at['t']:.1f} s"

        click.echo(f"person {row['group']:4d}  {row['name'] or '-':20s} {row['size']:5d} faces in "
                   f"{row['appearances']} appearances, {len(row['videos'])} videos, cameras "
                   f"{', '.join(row['cameras']) or '-'}; first {seen(row['first'])}, last {seen(row['last'])}")


@faces.command("name")
@click.argument("group", type=int)
@click.argument("name")
@click.pass_obj
@domain_errors
def name_command(obj: Context, group, name):
    """Name face group GROUP (an id that `vidsearch faces` lists), so that `query --who NAME` finds them."""
    obj.archive().name_face_group(group, name)
    click.echo(f"person {group} is named {name}")


@faces.command("forget")
@click.argument("groups", nargs=-1, type=int, metavar="[GROUP]...")
@click.option("--all", "everything", is_flag=True, help="Forget every face, group and name of the archive.")
@click.pass_obj
@domain_errors
def forget_command(obj: Context, groups, everything):
    """Delete the face descriptors, groups, names and face thumbnails of GROUPs (or --all) for good.

    Videos, frames and persons stay; the deleted data is also wiped from the catalog file's free space.
    """
    if bool(groups) == everything:
        raise click.UsageError("give GROUP ids or --all")
    deleted = obj.archive().forget_faces(None if everything else list(groups))
    click.echo(f"forgot {deleted} faces" + ("" if everything else f" of {len(groups)} groups"))
