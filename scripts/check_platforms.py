"""Resolve vidsearch and each of its extras for the platforms people own, from wheels only.

For x86-64 and ARM Linux, Apple Silicon and Windows, on the oldest and newest Python that pyproject.toml
supports, `uv pip compile --python-platform ... --python-version ... --only-binary :all:` resolves the
project as a new user's installer would there: with that platform's environment markers and wheel tags, and
with torch and torchvision pinned as scripts/install.sh pins them. Nothing is installed; only the package
index is asked.

Prints a table (markdown) of which install resolves where, with the reason for each that does not, and exits
1 when the base install fails to resolve anywhere (extras may: their table says where and why).

    python scripts/check_platforms.py            # base and every extra
    python scripts/check_platforms.py --base     # the base install only
    python scripts/check_platforms.py --log DIR  # also keep each resolution's output in DIR

uv comes from the `uv` package (in the dev extra) or from PATH.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

# (column name, uv's --python-platform, extra environment). torch's Apple Silicon wheels need macOS 14.
PLATFORMS = (
    ("linux-x86_64", "x86_64-manylinux_2_28", {}),
    ("linux-aarch64", "aarch64-manylinux_2_28", {}),
    ("macos-arm64", "aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
    ("windows-x86_64", "x86_64-pc-windows-msvc", {}),
)

@dataclass(frozen=True)
class Outcome:
    install: str  # "base" or an extra's name
    platform: str
    python: str
    ok: bool
    reason: str  # why it does not resolve: uv's first cause, shortened
    seconds: float
    output: str


def python_versions(project: dict) -> tuple[str, str]:
    """The oldest and newest Python that the classifiers name (which the tests check match requires-python)."""
    minors = sorted(
        int(c.rsplit(".", 1)[1])
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    return f"3.{minors[0]}", f"3.{minors[-1]}"


def pins() -> list[str]:
    """torch and torchvision as scripts/install.sh pins them: a pair whose compiled operators match."""
    text = (ROOT / "scripts" / "install.sh").read_text()
    found = re.findall(r'"((?:torch|torchvision)==[^"]+)"', text)
    if sorted(p.split("==")[0] for p in found) != ["torch", "torchvision"]:
        raise SystemExit("scripts/install.sh no longer pins torch and torchvision as a pair")
    return found


def uv_binary() -> str:
    try:
        import uv

        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if not found:
        raise SystemExit("check_platforms: uv is not installed (pip install uv, or install the dev extra)")
    return found


def short_reason(output: str) -> str:
    """Why a resolution failed, in one line: uv's hint about the package that has no wheel for the target."""
    text = " ".join(output.split())
    hint = re.search(r"hint: Wheels are available for `([^`]+)` \(v[^)]+\) on the following platforms: (.+?)(?= hint:|$)", text)
    if hint:
        return f"{hint.group(1)}: wheels only for {hint.group(2).replace('`', '')}"
    hint = re.search(r"hint: Wheels are required for `([^`]+)` because building from source is disabled", text)
    if hint:
        return f"{hint.group(1)}: no wheel on PyPI (source distribution only)"
    hint = re.search(r"hint: You require CPython \S+ \(`(cp\d+)`\), but we only found wheels for `([^`]+)`", text)
    if hint:
        return f"{hint.group(2)}: no {hint.group(1)} wheel"
    cause = re.search(r"cause: (.+?)(?:, we can conclude|$)", text)
    return (cause.group(1) if cause else text or "failed")[:160]


def resolve(uv: str, folder: Path, constraints: Path, install: str, platform: tuple, python: str) -> Outcome:
    name, target, environment = platform
    command = [
        uv, "pip", "compile", str(folder / "pyproject.toml"), "--constraint", str(constraints),
        "--python-platform", target, "--python-version", python, "--only-binary", ":all:",
        "--no-header", "--no-annotate", "--quiet", "--output-file", os.devnull,
    ]
    if install != "base":
        command += ["--extra", install]
    started = time.monotonic()
    # a project's own uv settings must not steer the check (an index, a resolution strategy)
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=folder,
        # no interpreter of the target version is needed (or downloaded): --python-version stands in for it
        env={**os.environ, **environment, "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"},
    )
    output = done.stdout + done.stderr
    ok = done.returncode == 0
    return Outcome(install, name, python, ok, "" if ok else short_reason(output), time.monotonic() - started, output)


def project_copy(folder: Path, pyproject: dict) -> list[str]:
    """A copy of the project's pyproject.toml and README in `folder`; the installs: base and each extra."""
    shutil.copy(ROOT / "pyproject.toml", folder / "pyproject.toml")
    shutil.copy(ROOT / "README.md", folder / "README.md")
    return ["base", *pyproject["project"].get("optional-dependencies", {})]


def table(outcomes: list[Outcome], installs: list[str], columns: list[tuple[str, str]]) -> str:
    by_key = {(o.install, o.platform, o.python): o for o in outcomes}
    reasons: dict[str, int] = {}
    header = "| install | " + " | ".join(f"{p} py{v}" for p, v in columns) + " |"
    rows = [header, "|" + "---|" * (len(columns) + 1)]
    for install in installs:
        cells = []
        for platform, python in columns:
            outcome = by_key[(install, platform, python)]
            if outcome.ok:
                cells.append("ok")
            else:
                number = reasons.setdefault(outcome.reason, len(reasons) + 1)
                cells.append(f"no [{number}]")
        rows.append(f"| {install} | " + " | ".join(cells) + " |")
    notes = [f"[{number}] {reason}" for reason, number in reasons.items()]
    return "\n".join(rows + ([""] + notes if notes else []))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", action="store_true", help="resolve the base install only")
    parser.add_argument("--log", type=Path, help="folder to keep each resolution's output in")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="resolutions at once (default: one per CPU; uv is CPU-bound here)")
    args = parser.parse_args()

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pythons = python_versions(pyproject["project"])
    uv = uv_binary()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vidsearch-platforms-") as temporary:
        folder = Path(temporary)
        installs = project_copy(folder, pyproject)
        if args.base:
            installs = ["base"]
        constraints = folder / "constraints.txt"
        constraints.write_text("\n".join(pins()) + "\n")
        jobs = [(install, platform, python) for install in installs for platform in PLATFORMS for python in pythons]
        with ThreadPoolExecutor(args.jobs) as pool:
            outcomes = list(pool.map(lambda job: resolve(uv, folder, constraints, *job), jobs))
    columns = [(platform[0], python) for platform in PLATFORMS for python in pythons]
    print(table(outcomes, installs, columns))
    print(f"\nresolved {len(outcomes)} installs in {time.monotonic() - started:.0f} s "
          f"(wheels only; {', '.join(pins())}; macOS 14+, manylinux_2_28)")
    if args.log:
        args.log.mkdir(parents=True, exist_ok=True)
        for o in outcomes:
            (args.log / f"{o.install}-{o.platform}-py{o.python}.txt").write_text(o.output)
    failed = [o for o in outcomes if o.install == "base" and not o.ok]
    for o in failed:
        print(f"check_platforms: the base install does not resolve on {o.platform} py{o.python}: {o.reason}",
              file=sys.stderr)
        print(o.output, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
