"""``python -m course_utils.course run|table|status|release``: the whole course from a shell.

- ``run [NOTEBOOK ...] [--profile P] [--output DIR | --inplace]``: execute notebooks in
  course order (all by default; name them by number ``02``, stem or path), with a
  progress bar per notebook and per cell; stops at the first failing cell, naming it.
- ``table [--check]``: write the README's results table from ``results/*.json``;
  ``--check`` only compares and exits 1 when the README differs.
- ``status``: per notebook, its results (profile, date) and its cached checkpoints.
- ``release [NOTEBOOK ...] [--output DIR]``: the student copies of the notebooks, made by
  nbgrader (an instructor extra): solutions replaced, hidden tests removed, outputs cleared.
- ``pack [--output FILE] [--profile P]`` / ``unpack FILE``: hand trained checkpoints to a
  class in one verified archive (see :mod:`course_utils.kit`).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from tqdm.auto import tqdm

from course_utils import kit, results
from course_utils.recipes import families as recipe_families
from course_utils.release import INSTALL_HINT, RELEASE, ReleaseError, release
from course_utils.runtime import (
    PROFILES,
    REPO_ROOT,
    atomic_write,
    checkpoint_root,
    ensure_writable,
    profile,
    results_root,
)

NOTEBOOKS = REPO_ROOT / "notebooks"
README = REPO_ROOT / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
TABLE_COMMAND = "python -m course_utils.course table"

USES = {"06": ("02", "03", "04")}  # notebook 06 trains nothing: it loads these notebooks' models

RUN_HELP = """\
By default the executed copies go to runs/<profile>/ and the notebooks in notebooks/ stay as
they are: their stored outputs are those of the measured cpu runs that the README quotes, and
`pytest --nbval` compares their profile-independent cells. --inplace writes into the notebooks
themselves, which is how a maintainer re-measures (with --profile cpu). Each kernel starts in the
notebook's folder with COURSE_PROFILE set and COURSE_DATA_DIR, COURSE_CHECKPOINT_DIR and
COURSE_RESULTS_DIR passed through, as in Jupyter. The run stops at the first failing cell and
names it (exit status 1). Each cell's timing is also recorded in the executed notebook's metadata.
"""


class CourseError(Exception):
    """A problem reported in one line, with exit status 1 and no traceback."""


def number(path: Path) -> str:
    """The notebook's place in the course: the digits before the first ``_``."""
    return path.stem.partition("_")[0]


def find_notebooks(names: list[str], folder: Path = NOTEBOOKS) -> list[Path]:
    """The notebooks ``names`` (number, stem or path; all in ``folder`` if none), in course order."""
    available = sorted(folder.glob("[0-9]*.ipynb"))
    if not names:
        return available
    chosen = set()
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb":
            if not path.is_file():
                raise CourseError(f"no notebook file {name}")
            chosen.add(path.resolve())
            continue
        key = name.zfill(2) if name.isdigit() else name
        matches = [nb for nb in available if key in (nb.stem, number(nb))]
        if len(matches) != 1:
            listing = ", ".join(nb.stem for nb in available) or "none"
            raise CourseError(f"unknown notebook {name!r}; name one by number, stem or path (in {folder}: {listing})")
        chosen.add(matches[0])
    return sorted(chosen, key=lambda nb: nb.name)


@dataclass
class Outcome:
    """How one notebook's run went: wall time per executed cell, and the failure if any."""

    seconds: float = 0.0
    cells: dict[int, float] = field(default_factory=dict)
    error: str | None = None


def _first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip() and not line.startswith("# NBVAL")]
    first = lines[0].strip() if lines else ""
    return first if len(first) <= 60 else first[:57] + "..."


def execute(path: Path, target: Path | None) -> Outcome:
    """Run every cell of ``path`` in a fresh kernel started in the notebook's folder and
    write the executed notebook to ``target`` (None: back into ``path``). A failed run is
    written only to a separate ``target``, never over the notebook itself."""
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises JSON, validation and encoding errors
        raise CourseError(f"{path} is not a readable notebook ({type(error).__name__}: {error})") from None
    code = sum(cell.cell_type == "code" and bool(cell.source.strip()) for cell in notebook.cells)
    outcome = Outcome()
    client = NotebookClient(
        notebook, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    bar = tqdm(total=code, desc=path.stem, unit="cell", position=1, leave=False)
    started: dict[int, float] = {}

    def on_execute(cell: Any, cell_index: int) -> None:
        started[cell_index] = time.perf_counter()
        bar.set_postfix_str(f"cell {cell_index + 1}: {_first_line(cell.source)}")

    def on_executed(cell: Any, cell_index: int, execute_reply: Any) -> None:
        outcome.cells[cell_index] = time.perf_counter() - started[cell_index]
        bar.update()

    client.on_cell_execute, client.on_cell_executed = on_execute, on_executed
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:
        outcome.error = f"{error.ename}: {error.evalue}"
    except DeadKernelError:
        outcome.error = "the kernel died (out of memory?)"
    except Exception as error:  # the kernel did not start or stopped answering
        outcome.error = f"{type(error).__name__}: {error}"
    finally:
        bar.close()
    outcome.seconds = time.perf_counter() - start
    if outcome.error and started:
        index = max(started)
        cell = f"cell {index + 1} of {len(notebook.cells)} ({_first_line(notebook.cells[index].source)})"
        outcome.error = f"{cell}: {outcome.error}"
    if target is not None or not outcome.error:
        with atomic_write(target or path, "w") as f:
            nbformat.write(notebook, f)
    return outcome


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def run(names: list[str], profile_name: str | None, output: Path | None, inplace: bool) -> int:
    """Execute the notebooks in course order; returns the exit status (1 at the first failure)."""
    try:
        chosen = profile_name or profile()
    except ValueError as error:
        raise CourseError(str(error)) from None
    notebooks = find_notebooks(names)
    if not notebooks:
        raise CourseError(f"no notebooks in {NOTEBOOKS}")
    folder = None if inplace else (output or REPO_ROOT / "runs" / chosen)
    if folder is not None:
        try:
            ensure_writable(folder)
        except OSError as error:
            raise CourseError(f"cannot write to the output folder {folder}: {error.strerror or error}") from None
    else:
        locked = [str(nb) for nb in notebooks if not os.access(nb, os.W_OK)]
        if locked:
            raise CourseError(f"cannot run in place, not writable: {', '.join(locked)}")
    os.environ["COURSE_PROFILE"] = chosen  # the kernels inherit this environment
    print(f"profile {chosen}; executed notebooks go to {folder or 'the notebooks themselves (in place)'}")
    total = 0.0
    for path in tqdm(notebooks, desc="course", unit="notebook", position=0):
        outcome = execute(path, folder / path.name if folder else None)
        total += outcome.seconds
        if outcome.error:
            tqdm.write(f"FAIL {path.stem} after {_minutes(outcome.seconds)}, {outcome.error}")
            if folder:
                tqdm.write(f"The executed part is in {folder / path.name}")
            return 1
        slowest = sorted(outcome.cells.items(), key=lambda item: -item[1])[:3]
        cells = ", ".join(f"cell {index + 1} {seconds:.1f} s" for index, seconds in slowest)
        tqdm.write(f"ok   {path.stem} in {_minutes(outcome.seconds)} (slowest: {cells})")
    print(f"{len(notebooks)} notebooks in {_minutes(total)}, profile {chosen}")
    return 0


# ---------------------------------------------------------------- the README's results table


def _number_text(value: Any) -> str:
    if isinstance(value, float):  # scores in [0, 1] to three decimals, others to three digits
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def metric_rows(name: str, value: Any, nulls: dict[str, str], where: str) -> list[tuple[str, str]]:
    """(metric, value) rows for one metric: a dict of numbers is one row, a dict of dicts
    one row per entry, a list (per-class scores) none, a null its reason."""
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        if any(isinstance(item, dict | list) for item in value.values()):
            return [
                row
                for key, item in value.items()
                for row in metric_rows(f"{name}: {key}", item, nulls, f"{where}.{key}")
            ]
        return [(name, ", ".join(f"{key} {_value_text(item, nulls, f'{where}.{key}')}" for key, item in value.items()))]
    return [(name, _value_text(value, nulls, where))]


def _value_text(value: Any, nulls: dict[str, str], where: str) -> str:
    return f"null ({nulls.get(where, 'no reason recorded')})" if value is None else _number_text(value)


def _grouped(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """Metrics ``x_10, x_20, ...`` (numbers, one after another) become one entry ``x_N``,
    N = 10 / 20 / ..., so that a series reads as one row."""
    entries: list[tuple[str, Any]] = []
    keys = list(metrics)
    i = 0
    while i < len(keys):
        match = re.fullmatch(r"(.+)_(\d+)", keys[i])
        run = [keys[i]]
        if match:
            while i + len(run) < len(keys) and re.fullmatch(rf"{re.escape(match[1])}_\d+", keys[i + len(run)]):
                run.append(keys[i + len(run)])
        series = [metrics[key] for key in run]
        if len(run) > 1 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in series):
            counts = " / ".join(key.rpartition("_")[2] for key in run)
            entries.append((f"{match[1]}_N, N = {counts}", " / ".join(_number_text(v) for v in series)))
        else:
            entries.extend((key, metrics[key]) for key in run)
        i += len(run)
    return entries


def _data_text(sources: list[str]) -> str:
    """``x train from P`` and ``x test from P`` read as ``x train, test from P``."""
    splits: dict[tuple[str, str], list[str]] = {}
    for source in sources:
        match = re.fullmatch(r"(\S+) (\S+) from (.+)", source)
        name, split, where = match.groups() if match else (source, "", "")
        found = splits.setdefault((name, where), [])
        if split not in found:
            found.append(split)
    texts = [f"{name} {', '.join(found)} from {where}" if where else name for (name, where), found in splits.items()]
    return "; ".join(texts) or "not recorded"


def results_table(folder: Path) -> str:
    """The markdown written between the README's markers, from ``folder/*.json``."""
    files = sorted(folder.glob("*.json"))
    if not files:
        return f"No results measured yet (`{TABLE_COMMAND}` writes them here from `results/*.json`).\n"
    runs = ["| notebook | profile | data | hardware | wall time | date |", "|---|---|---|---|---|---|"]
    rows = ["| notebook | metric | value |", "|---|---|---|"]
    totals: dict[str, list[float]] = {}
    for path in files:
        record = results.read(path)
        wall = record.get("wall_seconds")
        if isinstance(wall, int | float):
            totals.setdefault(str(record.get("profile")), []).append(wall)
        runs.append(
            "| "
            + " | ".join(
                _cell(text)
                for text in (
                    path.stem,
                    str(record.get("profile", "not recorded")),
                    _data_text(record.get("datasets", [])),
                    results.describe_hardware(record.get("hardware", "not recorded")),
                    _minutes(wall) if isinstance(wall, int | float) else "not recorded",
                    str(record["finished"])[:10] if "finished" in record else "not recorded",
                )
            )
            + " |"
        )
        nulls = record.get("nulls", {})
        for key, value in _grouped(record["metrics"]):
            for metric, text in metric_rows(key, value, nulls, f"metrics.{key}"):
                rows.append(f"| {path.stem} | `{_cell(metric)}` | {_cell(text)} |")
    total = "; ".join(f"{name} profile {_minutes(sum(w))} ({len(w)} notebooks)" for name, w in totals.items())
    note = [
        f"Sum of the wall times: {total or 'none recorded'}.",
        f"Written by `{TABLE_COMMAND}` from `results/*.json`; lists (per-class scores) and",
        "each run's configuration are in those files. Hardware: CPU model, cores used of those available",
        "and the bfloat16 path training took; files written before these were recorded show what they hold.",
    ]
    return "\n".join([*runs, "", *rows, "", *note]) + "\n"


def _split_readme(text: str, readme: Path) -> tuple[str, str, str]:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise CourseError(f"{readme} needs one {BEGIN} line and, after it, one {END} line around the results table")
    head, rest = text.split(BEGIN)
    body, tail = rest.split(END)
    return head + BEGIN + "\n", body.strip("\n") + "\n", END + tail


def readme_table(readme: Path = README) -> str:
    """The text between the README's results markers, as it is now."""
    return _split_readme(readme.read_text(), readme)[1]


def table(check: bool, folder: Path | None = None, readme: Path = README) -> int:
    """Write the results table into ``readme`` (``check``: compare only); returns the exit status."""
    try:
        new = results_table(folder or results_root())
    except ValueError as error:
        raise CourseError(str(error)) from None
    head, old, tail = _split_readme(readme.read_text(), readme)
    if old == new:
        print(f"{readme}: the results table is up to date")
        return 0
    if check:
        diff = difflib.unified_diff(old.splitlines(), new.splitlines(), "README", "results", lineterm="")
        print("\n".join(diff))
        print(f"{readme}: the results table differs from results/*.json; run {TABLE_COMMAND}")
        return 1
    with atomic_write(readme, "w") as f:
        f.write(f"{head}\n{new}\n{tail}")
    print(f"{readme}: results table written")
    return 0


# ---------------------------------------------------------------- status


def _results_of(nb_number: str) -> list[str]:
    found = []
    for folder in (results_root(), results_root() / "smoke"):
        for path in sorted(folder.glob(f"{nb_number}_*.json")):
            try:
                record = results.read(path)
                found.append(f"{record.get('profile', '?')} {str(record.get('finished', '?'))[:10]} ({path.name})")
            except (OSError, ValueError) as error:
                found.append(f"DAMAGED {path}: {error}")
    return found


def _checkpoints_of(nb_number: str) -> list[str]:
    names = recipe_families().get(nb_number, set())  # checkpoints are named <family>-<hash>.pt
    found = []
    for name in PROFILES:
        files = sorted(
            path.name for path in (checkpoint_root() / name).glob("*.pt") if path.name.rpartition("-")[0] in names
        )
        if files:
            found.append(f"{name}: {', '.join(files)}")
    return found


def status(folder: Path = NOTEBOOKS) -> int:
    """Print, per notebook, its results (profile, date) and its cached checkpoints."""
    print(f"results in {results_root()}, checkpoints in {checkpoint_root()}/<profile>")
    for path in find_notebooks([], folder):
        key = number(path)
        print(path.stem)
        print(f"  results:     {'; '.join(_results_of(key)) or 'none'}")
        checkpoints = "; ".join(_checkpoints_of(key)) or "none"
        if key in USES:
            checkpoints += f" (it loads the models of notebooks {', '.join(USES[key])}: see their checkpoints)"
        print(f"  checkpoints: {checkpoints}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.course", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="execute notebooks headless", description=RUN_HELP)
    run_parser.add_argument("notebooks", nargs="*", help="number (02), stem or path; default: all, in course order")
    run_parser.add_argument(
        "--profile",
        choices=PROFILES,
        help="COURSE_PROFILE for the kernels (default: the variable, else gpu with CUDA/MPS, else cpu)",
    )
    where = run_parser.add_mutually_exclusive_group()
    where.add_argument("--output", type=Path, help="folder for the executed notebooks (default: runs/<profile>/)")
    where.add_argument("--inplace", action="store_true", help="write the outputs into the notebooks themselves")
    table_parser = commands.add_parser("table", help="write the README's results table from results/*.json")
    table_parser.add_argument("--check", action="store_true", help="only compare; exit 1 if the README differs")
    commands.add_parser("status", help="results and cached checkpoints per notebook")
    release_parser = commands.add_parser(
        "release",
        help="student copies of the notebooks (needs nbgrader)",
        description="Student copies of the notebooks, made by nbgrader generate_assignment: solutions replaced by "
        f"raise NotImplementedError(), hidden tests removed, outputs cleared. nbgrader: {INSTALL_HINT}",
    )
    release_parser.add_argument("notebooks", nargs="*", help="number (02), stem or path; default: all")
    release_parser.add_argument("--output", type=Path, default=RELEASE, help="folder for them (default: release/)")
    pack_parser = commands.add_parser("pack", help="one archive of a profile's checkpoints, with digests and recipes")
    pack_parser.add_argument("--profile", choices=PROFILES, default="cpu", help="whose checkpoints (default: cpu)")
    pack_parser.add_argument("--output", type=Path, help="the archive (default: course-checkpoints-<profile>.tar.gz)")
    unpack_parser = commands.add_parser("unpack", help="verify an archive from pack and add it to the checkpoint cache")
    unpack_parser.add_argument("archive", type=Path, help="a .tar.gz written by pack")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            output = args.output or Path(f"course-checkpoints-{args.profile}.tar.gz")
            print(f"{output}: {kit.describe(kit.pack(output, args.profile))}")
            return 0
        if args.command == "unpack":
            manifest, folder = kit.unpack(args.archive)
            print(f"{folder}: {kit.describe(manifest)} verified and unpacked")
            return 0
        if args.command == "run":
            return run(args.notebooks, args.profile, args.output, args.inplace)
        if args.command == "table":
            return table(args.check)
        if args.command == "release":
            written = release(find_notebooks(args.notebooks), args.output)
            print(f"{len(written)} student notebooks in {args.output}")
            return 0
        return status()
    except (CourseError, ReleaseError, kit.KitError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
