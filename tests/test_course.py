"""The course command: headless runs, the results table of RESULTS.md, status."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_tools import course
from course_utils.recipes import Recipe
from course_utils.runtime import REPO_ROOT


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook of one markdown cell followed by code cells ``sources``."""
    cells = [nbformat.v4.new_markdown_cell("# a throwaway notebook")]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def write_result(folder: Path, stem: str, **fields) -> None:
    record = {"notebook": stem, "profile": "cpu", "datasets": [], "metrics": {}, "wall_seconds": 90.0}
    record.update(fields)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(record))


# ---------------------------------------------------------------- run


def test_run_smoke_end_to_end_stops_at_the_failing_cell_and_names_it(isolated):
    """Three notebooks, given out of order: 01 passes, 02 stops on a missing dataset, 03 never runs."""
    folder = isolated / "nbs"
    write_notebook(
        folder / "01_ok.ipynb",
        "import os\nprint('profile', os.environ['COURSE_PROFILE'], 'cwd', os.getcwd())",
        "from course_utils import results\nresults.save('01_ok', {'score': 0.5}, sources=[], wall_seconds=1.0)",
    )
    write_notebook(
        folder / "02_needs_data.ipynb",
        "x = 1",
        "from course_utils.data import DatasetNotFoundError\n"
        "raise DatasetNotFoundError('stl10 train is missing; looked in /nowhere')",
        "print('never reached')",
    )
    write_notebook(folder / "03_later.ipynb", "print('must not run after a failure')")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "course_tools", "run", "--profile", "smoke", "--output", str(isolated / "out")]
        + [str(folder / name) for name in ("03_later.ipynb", "02_needs_data.ipynb", "01_ok.ipynb")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    failure = next(line for line in output.splitlines() if line.startswith("FAIL"))
    assert "02_needs_data" in failure and "cell 3 of 4" in failure, "the third cell (markdown counted) failed"
    assert "DatasetNotFoundError: stl10 train is missing; looked in /nowhere" in failure
    assert "ok   01_ok" in output and "03_later" not in output.replace(str(folder), "")

    executed = nbformat.read(isolated / "out" / "01_ok.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == f"profile smoke cwd {folder.resolve()}\n"
    saved = json.loads((isolated / "results" / "smoke" / "01_ok.json").read_text())
    assert saved["profile"] == "smoke", "the kernel saw COURSE_PROFILE and COURSE_RESULTS_DIR"
    partial = nbformat.read(isolated / "out" / "02_needs_data.ipynb", as_version=4)
    assert partial.cells[3].outputs == [], "the cell after the failure did not run"
    assert not (isolated / "out" / "03_later.ipynb").exists()


def test_run_in_place_writes_outputs_into_the_notebook(isolated, capsys):
    path = write_notebook(isolated / "01_tiny.ipynb", "print(6 * 7)")
    assert course.main(["run", str(path), "--inplace", "--profile", "smoke"]) == 0
    assert nbformat.read(path, as_version=4).cells[1].outputs[0]["text"] == "42\n"
    assert "1 notebooks in" in capsys.readouterr().out


def test_a_failed_run_in_place_leaves_the_notebook_as_it_was(isolated, capsys):
    path = write_notebook(isolated / "01_fails.ipynb", "print('ran')", "1 / 0")
    before = path.read_text()
    assert course.main(["run", str(path), "--inplace", "--profile", "smoke"]) == 1
    assert "ZeroDivisionError: division by zero" in capsys.readouterr().out
    assert path.read_text() == before


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["run", "07"], "unknown notebook '07'; name one by number, stem or path"),
        (["run", "supervised"], "unknown notebook 'supervised'"),
        (["run", "missing/09_x.ipynb"], "no notebook file missing/09_x.ipynb"),
    ],
)
def test_unknown_notebooks_are_named(isolated, capsys, arguments, message):
    assert course.main(arguments) == 1
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err


def test_an_unwritable_output_folder_stops_before_any_notebook_runs(isolated, capsys):
    (isolated / "a-file").write_text("")
    notebook = write_notebook(isolated / "01_tiny.ipynb", "print(1)")
    assert course.main(["run", str(notebook), "--output", str(isolated / "a-file" / "out")]) == 1
    assert "cannot write to the output folder" in capsys.readouterr().err


def test_a_bad_profile_in_the_environment_is_one_line(isolated, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    assert course.main(["run", str(write_notebook(isolated / "01_tiny.ipynb", "1"))]) == 1
    assert "COURSE_PROFILE='fast' is not a profile; choose one of smoke, laptop, full" in capsys.readouterr().err


def test_notebooks_are_found_by_number_stem_or_path_and_run_in_course_order(isolated):
    folder = isolated / "nbs"
    for name in ("01_a", "02_b", "10_c"):
        write_notebook(folder / f"{name}.ipynb", "1")
    names = ["10_c", "2", str(folder / "01_a.ipynb"), "02"]
    assert [p.name for p in course.find_notebooks(names, folder)] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in course.find_notebooks([], folder)] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]


# ---------------------------------------------------------------- table


def test_the_results_page_table_is_what_the_results_files_say():
    """Numbers reach RESULTS.md only through `python -m course_tools table`."""
    expected = course.results_table(REPO_ROOT / "results")
    assert course.page_table(REPO_ROOT / "RESULTS.md") == expected, (
        "RESULTS.md's results table differs from results/*.json; run python -m course_tools table"
    )


def _numbers(value):
    """Every number in a results record's metrics, however deep."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


def _blocks(text: str, pattern: str) -> dict[str, str]:
    """The text of each notebook's block: ``pattern`` finds its start and number."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(pattern, text, re.M)]
    ends = [start for start, _ in starts[1:]] + [len(text)]
    blocks: dict[str, str] = {}
    for (start, number), end in zip(starts, ends):
        blocks[number] = blocks.get(number, "") + text[start:end].split("\n## ")[0]
    return blocks


@pytest.mark.parametrize(
    "page, patterns",
    [
        ("README.md", [r"^\| \[(0[1-6])\]"]),  # the notebook table's rows
        ("INSTRUCTORS.md", [r"^\| (0[1-6]) ", r"^### (0[1-6]) "]),  # the time table's rows, the per-notebook sections
    ],
)
def test_the_numbers_quoted_per_notebook_are_in_its_results_file(page, patterns):
    """Every decimal number that a page quotes for a notebook is one of that notebook's results
    (a metric at the precision shown) or its wall time in minutes: no number typed by hand."""
    text = (REPO_ROOT / page).read_text()
    for pattern in patterns:
        blocks = _blocks(text, pattern)
        assert sorted(blocks) == [f"0{i}" for i in range(1, 7)], f"{page}: a block per notebook for {pattern}"
        for number, block in blocks.items():
            [path] = (REPO_ROOT / "results").glob(f"{number}_*.json")
            record = json.loads(path.read_text())
            values = [*_numbers(record["metrics"]), record["wall_seconds"] / 60]
            for shown in re.findall(r"\d+\.\d+(?![\d.]| ?[MG]B)", block):  # a download size is no result
                places = len(shown.split(".")[1])
                assert any(f"{v:.{places}f}" == shown for v in values), (
                    f"{page}, notebook {number}: {shown} is not in {path.name}"
                )


def test_table_rows_by_hand(isolated):
    folder = isolated / "results"
    write_result(
        folder,
        "01_demo",
        datasets=[
            "mnist train from /d (idx), 300 per digit (seed 0)",
            "mnist test from /d (idx)",
            "mnist train from /d (idx)",
            "fashion_mnist test from Debian package",
            "a {stand-in}",
        ],
        metrics={
            "f1": 0.91234,
            "probe_10": 0.5,
            "probe_100": 0.6,
            "per_class": [0.1, 0.2],
            "knn": {"k=5": 0.7, "k=20": None},
            "ablation": {"crop": {"acc": 0.3}, "colour": {"acc": 0.25}},
            "position": 6.4614,
        },
        nulls={"metrics.knn.k=20": "was nan"},
        hardware={"cpu": "AMD EPYC", "cores_used": 2, "cores_available": 4, "bfloat16": "AVX512-BF16", "gpu": None},
        finished="2026-11-25T03:32:37+00:00",
    )
    write_result(folder, "02_old", hardware="x86_64 CPU, 2 cores, torch 2.15.0", wall_seconds=647.5)
    text = course.results_table(folder)
    assert (
        "| 01_demo | laptop | mnist train, test (idx); fashion_mnist test (Debian package); a {stand-in} "
        "| AMD EPYC, 2 of 4 cores, bfloat16 AVX512-BF16 | 1.5 min | 2026-11-25 |" in text
    )
    assert "| 02_old | laptop | not recorded | x86_64 CPU, 2 cores, torch 2.15.0 | 10.8 min | not recorded |" in text
    assert "Sum of the wall times: laptop profile 12.3 min (2 notebooks)." in text, "90 s + 647.5 s"
    rows = [line for line in text.splitlines() if line.startswith("| 01_demo | `")]
    assert rows == [
        "| 01_demo | `f1` | 0.912 |",
        "| 01_demo | `probe_N, N = 10 / 100` | 0.500 / 0.600 |",
        "| 01_demo | `knn` | k=5 0.700, k=20 null (was nan) |",
        "| 01_demo | `ablation: crop` | acc 0.300 |",
        "| 01_demo | `ablation: colour` | acc 0.250 |",
        "| 01_demo | `position` | 6.46 |",
    ]


def test_table_writes_between_the_markers_and_check_reports_a_difference(isolated, capsys):
    folder = isolated / "results"
    write_result(folder, "01_demo", metrics={"f1": 0.5})
    page = isolated / "RESULTS.md"
    page.write_text(f"intro\n\n{course.BEGIN}\nold table\n{course.END}\n\nnotes below\n")
    assert course.table(check=True, folder=folder, page=page) == 1
    assert "old table" in page.read_text(), "--check must not write"
    assert course.table(check=False, folder=folder, page=page) == 0
    text = page.read_text()
    assert text.startswith(f"intro\n\n{course.BEGIN}\n\n| notebook |") and text.endswith(
        f"{course.END}\n\nnotes below\n"
    )
    assert "| 01_demo | `f1` | 0.500 |" in text
    assert course.table(check=True, folder=folder, page=page) == 0
    write_result(folder, "01_demo", metrics={"f1": 0.6})
    assert course.table(check=True, folder=folder, page=page) == 1
    assert "-| 01_demo | `f1` | 0.500 |" in capsys.readouterr().out


def test_table_errors_name_the_damaged_file_and_the_missing_markers(isolated, capsys):
    folder = isolated / "results"
    folder.mkdir()
    (folder / "01_demo.json").write_text('{"metrics": {"f1": 0.5')
    page = isolated / "RESULTS.md"
    page.write_text(f"{course.BEGIN}\n{course.END}\n")
    with pytest.raises(course.CourseError, match="01_demo.json is not a readable results file"):
        course.table(check=True, folder=folder, page=page)
    page.write_text("no markers\n")
    (folder / "01_demo.json").write_text('{"metrics": {}}')
    with pytest.raises(course.CourseError, match="needs one <!-- results:begin --> line"):
        course.table(check=True, folder=folder, page=page)


# ---------------------------------------------------------------- status


def test_families_map_each_notebook_to_its_checkpoint_names():
    class Outside(Recipe):  # a recipe defined outside the package is not the course's
        name, notebook = "outside", "99_tests"

    found = course.families()
    assert found["01"] == {"fashion_supervised"}
    assert found["02"] == {"simsiam_fashion"}
    assert found["03"] == {"simclr", "simclr_scratch"}
    assert "99" not in found and "tests" not in found


def test_status_lists_results_and_checkpoints_per_notebook(isolated, capsys):
    folder = isolated / "nbs"
    for name in ("01_base", "02_simsiam", "06_eval"):
        write_notebook(folder / f"{name}.ipynb", "1")
    write_result(isolated / "results", "01_base", finished="2026-11-25T03:32:37+00:00")
    write_result(isolated / "results" / "smoke", "01_base", profile="smoke", finished="2026-11-24T01:00:00+00:00")
    (isolated / "results" / "02_simsiam.json").write_text("{damaged")
    names = ("cpu/fashion_supervised-0123456789ab.pt", "cpu/simsiam_fashion-aaaaaaaaaaaa.pt", "smoke/01_old.pt",
             "smoke/fashion_supervised-bbbbbbbbbbbb.pt", "cpu/other-1.pt",
             "laptop/fashion_supervised-cccccccccccc.pt")  # fmt: skip
    for name in names:
        (isolated / "checkpoints" / name).parent.mkdir(parents=True, exist_ok=True)
        (isolated / "checkpoints" / name).write_bytes(b"")
    assert course.status(folder) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert lines[:3] == [
        "01_base",
        "  results:     laptop 2026-11-25 (01_base.json); smoke 2026-11-24 (01_base.json)",  # cpu, read as laptop
        "  checkpoints: smoke: DAMAGED fashion_supervised-bbbbbbbbbbbb.pt; "
        "laptop: DAMAGED fashion_supervised-cccccccccccc.pt; "
        "laptop (in cpu/): DAMAGED fashion_supervised-0123456789ab.pt",
    ]  # 0-byte files are not cached models
    assert lines[4].startswith(f"  results:     DAMAGED {isolated / 'results' / '02_simsiam.json'}")
    assert lines[5] == "  checkpoints: laptop (in cpu/): DAMAGED simsiam_fashion-aaaaaaaaaaaa.pt"
    assert lines[6:] == [
        "06_eval",
        "  results:     none",
        "  checkpoints: none (it loads the models of notebooks 02, 03, 04: see their checkpoints)",
    ]


def test_a_damaged_notebook_is_named(isolated, capsys):
    (isolated / "01_broken.ipynb").write_text('{"cells": [')
    assert course.main(["run", str(isolated / "01_broken.ipynb"), "--output", str(isolated / "out")]) == 1
    assert f"{isolated / '01_broken.ipynb'} is not a readable notebook" in capsys.readouterr().err
