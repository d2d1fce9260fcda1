"""What the commands of the command line share: the options of ingesting, JSON output, errors as one line, and
the context that opens the Archive only for commands that need it."""

from __future__ import annotations

import functools

import click

from .errors import VidsearchError


def json_option(command):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")(command)


def domain_errors(command):
    """Errors of input or environment become one line and exit code 1; anything else is our bug."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from .progress import printable

        try:
            return command(*args, **kwargs)
        except VidsearchError as error:
            raise click.ClickException(printable(str(error))) from None

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


def ingest_options(command):
    """The options that say how videos are indexed: shared by ingest, watch and record --index."""
    for option in reversed([
        click.option("--fps", type=click.FloatRange(min=0, min_open=True), help="Frames sampled per second (default 1)."),
        click.option("--persons/--no-persons", default=True, show_default=True, help="Detect and embed persons."),
        click.option("--sample", type=click.Choice(["time", "keyframes"]), default=None,
                     help="time: the frame nearest each 1/fps step (default); keyframes: keyframes only, coarse and fast."),
        click.option("--reader", type=click.Choice(["pyav", "decord", "auto"]), default=None,
                     help="Decoding library (default pyav); auto: decord, PyAV where decord cannot read a file."),
        click.option("--tz", metavar="ZONE", help="IANA zone of clock times in file names, e.g. Europe/Berlin "
                     "(default: this machine's zone)."),
        click.option("--time-from", type=click.Choice(["auto", "mtime", "overlay"]), default="auto",
                     show_default=True,
                     help="auto: a video's start from its name, else its metadata; mtime: else also its file time "
                          "less its duration (copying a file changes it); overlay: else the date and time drawn on "
                          "its picture (CCTV exports), read on a few frames."),
    ]):
        command = option(command)
    return command


def speech_options(command):
    """How the sound of videos is transcribed at ingest."""
    for option in reversed([
        click.option("--speech/--no-speech", default=None,
                     help="Transcribe what is said in videos with sound, to search with query --said (default on)."),
        click.option("--asr-model", envvar="VIDSEARCH_ASR_MODEL", metavar="NAME|DIR",
                     help="faster-whisper model: a name (tiny, base, small, medium, large-v3, distil-large-v3...; "
                          "downloaded on first use) or a local model folder. Default base. Env: VIDSEARCH_ASR_MODEL."),
        click.option("--language", metavar="CODE",
                     help="Language of the speech (ISO 639-1: en, de, fr...); default: detected per video."),
    ]):
        command = option(command)
    return command


camera_option = click.option(
    "--camera", metavar="NAME",
    help="The camera of every video (default: the first folder under the folder given, or the settings' cameras.pattern).",
)


def _checked_kind(ctx: click.Context, _param, value: str) -> str:
    from .errors import ConfigError
    from .things import kind_choice

    if value == "speech":  # what was said: searched by the speech service, not among the vector kinds
        return value
    try:
        kind_choice(value, ctx.find_object(Context).settings)
    except ConfigError as error:
        raise click.BadParameter(str(error).removeprefix(f"--kind {value!r}: ")) from None
    return value


def kind_option(help_text: str):
    """--kind: all, frame, or a family or class of tracked things (person, vehicle, car...)."""
    return click.option("--kind", default="all", show_default=True, metavar="all|frame|FAMILY|CLASS",
                        callback=_checked_kind, help=help_text)


def ingest_arguments(fps, persons, sample, reader, tz, time_from, camera=None) -> dict:
    """Archive.ingest's keyword options from the values of ingest_options."""
    return {
        "fps": fps, "persons": persons, "sample": sample, "reader": reader, "camera": camera, "tz": tz,
        "time_from_mtime": time_from == "mtime", "time_from_overlay": time_from == "overlay",
    }


def asks_faces(text, image, like, face_picture, face_box, like_face, who) -> bool:
    """Whether query searches faces (--face, --face-box, --like-face or --who); that way only, then."""
    if all(asked is None for asked in (face_picture, face_box, like_face, who)):
        return False
    if sum(given is not None for given in (text, image, like, face_picture, like_face, who)) != 1:
        raise click.UsageError("give one of TEXT, --image, --like, --face, --like-face or --who")
    return True


def checked_query(text, kind, said, within, image, like, on_screen, show_timings) -> tuple[str | None, str | None]:
    """query's TEXT and --said once the ways of querying given are checked to go together: with --kind speech and
    no --said, TEXT is what was said."""
    if kind == "speech" and said is None:
        said, text = text, None
    if said is not None and (image is not None or like is not None):
        raise click.UsageError("--said goes with TEXT, not with --image or --like")
    given = sum(given is not None for given in (text, image, like))
    if given > 1 or (given == 0 and said is None and on_screen is None):
        raise click.UsageError(
            "give one of TEXT, --image, --like, --said, --face, --like-face or --who (or --text-on-screen alone)"
        )
    if within is not None and (said is None or text is None):
        raise click.UsageError("--within needs TEXT and --said")
    if show_timings and text is None:
        raise click.UsageError("--timings times text queries")
    return text, said
