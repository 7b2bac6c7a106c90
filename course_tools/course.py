"""``python -m course_tools run|table|status|release|book|pack|unpack``: the whole course from a shell.

``python -m course_tools COMMAND --help`` says what each command does and takes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import importlib
import os
import pkgutil
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from tqdm.auto import tqdm

from course_tools import book, kit
from course_tools.common import INSTALL_HINT, CourseError, output_folder
from course_tools.release import RELEASE, release
from course_utils import recipes, results
from course_utils.checkpoints import CheckpointError, load_checkpoint
from course_utils.runtime import (
    FOLDER_VARIABLES,
    OLD_PROFILE_NAMES,
    PROFILES,
    REPO_ROOT,
    atomic_write,
    checkpoint_folders,
    checkpoint_root,
    profile,
    results_root,
)

NOTEBOOKS = REPO_ROOT / "notebooks"
RESULTS_PAGE = REPO_ROOT / "RESULTS.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
TABLE_COMMAND = "python -m course_tools table"

USES = {"06": ("02", "03", "04")}  # notebook 06 trains nothing: it loads these notebooks' models

RUN_HELP = """\
By default the executed copies go to runs/<profile>/ and the notebooks in notebooks/ stay as
they are: their stored outputs are those of the measured laptop runs that RESULTS.md quotes, and
`pytest --nbval` compares their profile-independent cells. --inplace writes into the notebooks
themselves, which is how a maintainer re-measures (with --profile laptop). Each kernel starts in the
notebook's folder with COURSE_PROFILE set and COURSE_DATA_DIR, COURSE_CHECKPOINT_DIR and
COURSE_RESULTS_DIR passed through, as in Jupyter. The run stops at the first failing cell and
names it (exit status 1). Each cell's timing is also recorded in the executed notebook's metadata.
"""


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
        if not started:
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(RuntimeError):  # outside the main thread: nbclient's handling stays
                    asyncio.get_running_loop().add_signal_handler(signum, _interrupt, client, signum)
        started[cell_index] = time.perf_counter()
        bar.set_postfix_str(f"cell {cell_index + 1}: {_first_line(cell.source)}")

    def on_executed(cell: Any, cell_index: int, execute_reply: Any) -> None:
        outcome.cells[cell_index] = time.perf_counter() - started[cell_index]
        bar.update()

    client.on_cell_execute, client.on_cell_executed = on_execute, on_executed
    start = time.perf_counter()
    try:
        client.execute()
    except BaseException as error:  # nbclient turns a signal into errors of its own: name the signal
        if INTERRUPTED:
            raise KeyboardInterrupt from None
        outcome.error = _failure(error)
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


def _failure(error: BaseException) -> str:
    if isinstance(error, CellExecutionError):
        return f"{error.ename}: {error.evalue}"
    if isinstance(error, DeadKernelError):
        return "the kernel died (out of memory?)"
    if not isinstance(error, Exception):
        raise error
    return f"{type(error).__name__}: {error}"  # the kernel did not start or stopped answering


INTERRUPTED: list[int] = []  # the signal that stopped the run, if one did


def _interrupt(client: NotebookClient, signum: int) -> None:
    """Ctrl-C or SIGTERM while a cell runs: interrupt the cell (nbclient's own handler would
    shut the kernel down mid-reply, which ends in tracebacks from both sides)."""
    INTERRUPTED.append(signum)
    asyncio.ensure_future(client.km.interrupt_kernel())


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def run(names: list[str], profile_name: str | None, output: Path | None, inplace: bool) -> int:
    """Execute the notebooks in course order; returns the exit status (1 at the first failure)."""
    try:
        if profile_name:
            os.environ["COURSE_PROFILE"] = profile_name
        chosen = profile()  # an old name is said once and replaced by the new one
    except ValueError as error:
        raise CourseError(str(error)) from None
    notebooks = find_notebooks(names)
    if not notebooks:
        raise CourseError(f"no notebooks in {NOTEBOOKS}")
    folder = None if inplace else (output or REPO_ROOT / "runs" / chosen)
    sources = [nb for nb in notebooks if folder is not None and (folder / nb.name).resolve() == nb.resolve()]
    if sources:
        raise CourseError(
            f"--output {folder} holds the notebook {sources[0].name} itself: its stored outputs would be "
            "overwritten; choose another folder, or --inplace to overwrite on purpose"
        )
    if folder is not None:
        output_folder(folder)
    else:
        locked = [str(nb) for nb in notebooks if not os.access(nb, os.W_OK)]
        if locked:
            raise CourseError(f"cannot run in place, not writable: {', '.join(locked)}")
    os.environ["COURSE_PROFILE"] = chosen  # the kernels inherit this environment; they start in the
    for variable in FOLDER_VARIABLES:  # notebook's folder, so a relative folder is made absolute from here
        if os.environ.get(variable):
            os.environ[variable] = str(Path(os.environ[variable]).resolve())
    print(f"profile {chosen}; executed notebooks go to {folder or 'the notebooks themselves (in place)'}")
    total = 0.0
    INTERRUPTED.clear()
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


# ---------------------------------------------------------------- RESULTS.md's results table


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
    """The kind of source of each dataset, never its folder (which is the machine's):
    ``x train from data/x (ImageFolder layout)`` and ``x test from ...`` read as
    ``x train, test (ImageFolder layout)``; a source without a parenthesised kind is its own kind."""
    splits: dict[tuple[str, str], list[str]] = {}
    for source in sources:
        match = re.fullmatch(r"(\S+) (\S+) from ([^,]+?)(?: \(([^()]+)\))?(?:, .*)?", source)
        name, split, where, kind = match.groups() if match else (source, "", "", None)
        found = splits.setdefault((name, kind or where), [])
        if split not in found:
            found.append(split)
    texts = [f"{name} {', '.join(found)} ({kind})" if kind else name for (name, kind), found in splits.items()]
    return "; ".join(texts) or "not recorded"


def results_table(folder: Path) -> str:
    """The markdown written between the results page's markers, from ``folder/*.json``."""
    if not folder.is_dir():
        raise CourseError(f"the results folder {folder} does not exist; check COURSE_RESULTS_DIR (unset: results/)")
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


def _split_page(text: str, page: Path) -> tuple[str, str, str]:
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise CourseError(f"{page} needs one {BEGIN} line and, after it, one {END} line around the results table")
    head, rest = text.split(BEGIN)
    body, tail = rest.split(END)
    return head + BEGIN + "\n", body.strip("\n") + "\n", END + tail


def _read_page(page: Path) -> tuple[str, str, str]:
    try:
        text = page.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise CourseError(f"cannot read {page} ({getattr(error, 'strerror', None) or error})") from None
    return _split_page(text, page)


def page_table(page: Path = RESULTS_PAGE) -> str:
    """The text between the results page's markers, as it is now."""
    return _read_page(page)[1]


def table(check: bool, folder: Path | None = None, page: Path = RESULTS_PAGE) -> int:
    """Write the results table into ``page`` (``check``: compare only); returns the exit status."""
    try:
        new = results_table(folder or results_root())
    except ValueError as error:
        raise CourseError(str(error)) from None
    head, old, tail = _read_page(page)
    if old == new:
        print(f"{page}: the results table is up to date")
        return 0
    if check:
        diff = difflib.unified_diff(old.splitlines(), new.splitlines(), page.name, "results", lineterm="")
        print("\n".join(diff))
        print(f"{page}: the results table differs from results/*.json; run {TABLE_COMMAND}")
        return 1
    try:
        with atomic_write(page, "w") as f:
            f.write(f"{head}\n{new}\n{tail}")
    except OSError as error:
        raise CourseError(f"cannot write {page} ({error.strerror or error})") from None
    print(f"{page}: results table written")
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


def families() -> dict[str, set[str]]:
    """Checkpoint families per notebook number, e.g. ``{"02": {"simsiam_fashion"}}``, from
    every recipe defined in the modules of :mod:`course_utils.recipes`."""
    for module in pkgutil.iter_modules(recipes.__path__):
        importlib.import_module(f"{recipes.__name__}.{module.name}")
    found: dict[str, set[str]] = {}
    pending = list(recipes.Recipe.__subclasses__())
    while pending:
        recipe = pending.pop()
        pending += recipe.__subclasses__()
        if recipe.__module__.startswith(recipes.__name__):
            found.setdefault(number(Path(recipe.notebook)), set()).add(recipe.name)
    return found


def _checkpoints_of(nb_number: str) -> list[str]:
    names = families().get(nb_number, set())  # checkpoints are named <family>-<hash>.pt
    found = []
    for name in PROFILES:
        for folder in checkpoint_folders(name):
            files = [
                path.name if _readable(path) else f"DAMAGED {path.name}"
                for path in sorted(folder.glob("*.pt"))
                if path.name.rpartition("-")[0] in names
            ]
            label = name if folder.name == name else f"{name} (in {folder.name}/)"  # an earlier run's folder
            if files:
                found.append(f"{label}: {', '.join(files)}")
    return found


def _readable(checkpoint: Path) -> bool:
    try:
        load_checkpoint(checkpoint)
    except (CheckpointError, OSError):
        return False
    return True


def status(folder: Path = NOTEBOOKS) -> int:
    """Print, per notebook, its results (profile, date) and its cached checkpoints."""
    where = {"COURSE_RESULTS_DIR": results_root(), "COURSE_CHECKPOINT_DIR": checkpoint_root()}
    for variable, root in where.items():
        if root.exists() and not root.is_dir():
            raise CourseError(f"{root} is a file, not a folder; check {variable}")
    missing = [f"{root} does not exist (check {variable})" for variable, root in where.items() if not root.exists()]
    print(f"results in {results_root()}, checkpoints in {checkpoint_root()}/<profile>", *missing, sep="; ")
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
    """``python -m course_tools``: run the command ``argv`` names; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m course_tools", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="execute notebooks headless", description=RUN_HELP)
    run_parser.add_argument("notebooks", nargs="*", help="number (02), stem or path; default: all, in course order")
    run_parser.add_argument(
        "--profile",
        choices=(*PROFILES, *OLD_PROFILE_NAMES),
        help="COURSE_PROFILE for the kernels (default: the variable, else laptop; cpu and gpu are old names)",
    )
    where = run_parser.add_mutually_exclusive_group()
    where.add_argument("--output", type=Path, help="folder for the executed notebooks (default: runs/<profile>/)")
    where.add_argument("--inplace", action="store_true", help="write the outputs into the notebooks themselves")
    table_parser = commands.add_parser("table", help="write RESULTS.md's results table from results/*.json")
    table_parser.add_argument("--check", action="store_true", help="only compare; exit 1 if RESULTS.md differs")
    commands.add_parser("status", help="results and cached checkpoints per notebook")
    release_parser = commands.add_parser(
        "release",
        help="student copies of the notebooks (needs nbgrader)",
        description="Student copies of the notebooks, made by nbgrader generate_assignment: solutions replaced by "
        f"raise NotImplementedError(), hidden tests removed, outputs cleared. nbgrader: {INSTALL_HINT}",
    )
    release_parser.add_argument("notebooks", nargs="*", help="number (02), stem or path; default: all")
    release_parser.add_argument("--output", type=Path, default=RELEASE, help="folder for them (default: release/)")
    book_parser = commands.add_parser(
        "book",
        help="the course as a static HTML book (needs the instructor extra)",
        description="Build the notebooks, with their stored outputs (nothing runs), the README, INSTRUCTORS.md, "
        f"RESULTS.md and NOTES.md into a static site that reads offline. It needs: {INSTALL_HINT}",
    )
    book_parser.add_argument(
        "--output", type=Path, default=book.BOOK_OUTPUT, help="folder for the site (default: _build/book/)"
    )
    pack_parser = commands.add_parser("pack", help="one archive of a profile's checkpoints, with digests and recipes")
    pack_parser.add_argument("--profile", choices=PROFILES, default="laptop", help="whose (default: laptop)")
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
        if args.command == "book":
            print(f"the book is in {book.build(args.output)}")
            return 0
        return status()
    except (CourseError, OSError) as error:  # OSError: a folder or file the command needs cannot be read or written
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        name = signal.Signals(INTERRUPTED[0]).name if INTERRUPTED else "SIGINT"
        print(f"interrupted ({name}): stopped; no notebook in notebooks/ was written", file=sys.stderr)
        return 130
