"""The index commands of the command line: `index info`, `index build` and `index rebuild`."""

from __future__ import annotations

import click

from . import terminal
from .cli_common import Context, domain_errors, json_option


class ByteSize(click.ParamType):
    """A size such as 4GB, 512MB, 3GiB or a number of bytes."""

    name = "size"
    units = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
             "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        import re

        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
        if not found or found.group(2).lower() not in self.units:
            self.fail(f"{value!r} is not a size like 4GB, 512MB or 3GiB", param, ctx)
        return int(float(found.group(1)) * self.units[found.group(2).lower()])


@click.group()
def index():
    """Manage the vector indexes: exact while small, trained (IVF + exact re-ranking) when large.

    Example:

        vidsearch index info
    """


@index.command("info")
@json_option
@click.pass_obj
@domain_errors
def index_info(obj: Context, as_json):
    """Each index's type, vectors, bytes per vector in RAM, recall@10 against exact search and build time.

    Example:

        vidsearch index info --json
    """
    archive = obj.archive()
    terminal.print_index_reports({kind: archive.index_report(kind) for kind in ("frame", "person")}, as_json)


@index.command("build")
@click.option("--kind", "index_kind", type=click.Choice(["flat", "ivf-pq", "ivf-sq8"]),
              help="Index type; default: chosen for the number of vectors and the memory budget.")
@click.option("--memory-budget", type=ByteSize(), help="RAM the index may use, e.g. 4GB (per index).")
@click.option("--vectors", type=click.Choice(["all", "frame", "person"]), default="all", show_default=True,
              help="Which index to build.")
@json_option
@click.pass_obj
@domain_errors
def index_build(obj: Context, index_kind, memory_budget, vectors, as_json):
    """Build the index anew from the Parquet shards, of a chosen type or the one that suits its size.

    Example:

        vidsearch index build --kind ivf-pq --memory-budget 4GB
    """
    chosen = ("frame", "person") if vectors == "all" else (vectors,)
    terminal.print_index_reports(obj.archive().build_index(index_kind, memory_budget, chosen), as_json)


@index.command("rebuild")
@json_option
@click.pass_obj
@domain_errors
def index_rebuild(obj: Context, as_json):
    """Recreate the indexes from the Parquet shards (they are derived data), each of the type it was.

    Example:

        vidsearch index rebuild
    """
    terminal.print_index_reports(obj.archive().rebuild_index(), as_json)
