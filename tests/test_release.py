"""The student release (``python -m course_tools release``) and autograding with nbgrader.

nbgrader is an instructor extra. Without it these tests skip, except where
``COURSE_REQUIRE_NBGRADER=1`` (CI), where they fail."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_tools import course
from course_tools.common import INSTALL_HINT
from course_tools.release import MARKERS
from course_utils.runtime import REPO_ROOT, env_flag

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("0[1-6]_*.ipynb"))
# The real data folder, read before the tests isolate theirs: notebook 05's smoke split needs real CIFAR-10.
DATA_DIR = os.environ.get("COURSE_DATA_DIR") or str(REPO_ROOT / "data")
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def need_nbgrader() -> None:
    if importlib.util.find_spec("nbgrader") is None:
        if env_flag("COURSE_REQUIRE_NBGRADER", False):
            pytest.fail(f"COURSE_REQUIRE_NBGRADER is set but nbgrader is not installed: {INSTALL_HINT}")
        pytest.skip(f"nbgrader is not installed (an instructor extra: {INSTALL_HINT})")


def environment(**extra: str) -> dict[str, str]:
    """This process's environment (the test's isolated folders) with the repository importable."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The six student notebooks, made once by the release command."""
    need_nbgrader()
    folder = tmp_path_factory.mktemp("release")
    done = subprocess.run(
        [sys.executable, "-m", "course_tools", "release", "--output", str(folder)],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"6 student notebooks in {folder}" in done.stdout
    return folder


def test_release_without_nbgrader_is_one_clear_line(monkeypatch, tmp_path, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nbgrader" else real(name, *a))
    assert course.main(["release", "--output", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert error == f"error: the release needs nbgrader, not installed; it is an instructor extra: {INSTALL_HINT}\n"
    assert not (tmp_path / "out").exists()


def test_the_student_copies_hold_no_solution_no_hidden_test_and_no_output(released):
    for source_path in NOTEBOOKS:
        source = nbformat.read(source_path, as_version=4)
        student = nbformat.read(released / source_path.name, as_version=4)
        nbformat.validate(student)
        assert [cell.id for cell in student.cells] == [cell.id for cell in source.cells]
        text = "\n".join(cell.source for cell in student.cells)
        for marker in MARKERS:
            assert marker not in text, f"{source_path.name}: {marker}"
        assert not any(
            cell.get("outputs") or cell.get("execution_count") for cell in student.cells if cell.cell_type == "code"
        )
        for before, after in zip(source.cells, student.cells):
            grading = before.metadata.get("nbgrader", {})
            if grading.get("solution") and before.cell_type == "markdown":  # a written answer: its mark scheme goes
                assert after.source == "YOUR ANSWER HERE" and not after.metadata["nbgrader"]["locked"]
                assert after.metadata["nbgrader"]["points"] == grading["points"]
                scheme = [line for line in before.source.splitlines() if len(line) > 20]
                assert not [line for line in scheme if line in text], f"{source_path.name} {grading['grade_id']}"
                assert "Mark scheme" not in text
            elif grading.get("solution"):
                body = SOLUTION.search(before.source).group(1)
                code = [line.strip() for line in body.splitlines() if len(line.strip()) > 12]
                leaked = [line for line in code if line in text]
                assert not leaked, f"{source_path.name} {grading['grade_id']}: solution code {leaked}"
                assert "raise NotImplementedError()" in after.source
                assert after.source.splitlines()[0] == before.source.splitlines()[0]  # the signature stays
            elif grading.get("grade"):
                visible = before.source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
                assert after.source.rstrip() == visible  # the visible checks stay, the hidden tests go
                assert after.metadata["nbgrader"]["locked"]
            else:
                assert after.source == before.source


def test_the_student_copies_run_up_to_the_first_exercise(released, isolated):
    """Smoke profile, the real data, and no training of notebook 06's missing encoders (the
    test's checkpoint folder is empty): every cell before the first test cell must run."""
    env = {"COURSE_PROFILE": "smoke", "COURSE_DATA_DIR": DATA_DIR, "COURSE_TRAIN_MISSING": "0"}
    env["PYTHONPATH"] = environment()["PYTHONPATH"]
    for path in sorted(released.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        first_test = next(i for i, cell in enumerate(notebook.cells) if cell.metadata.get("nbgrader", {}).get("grade"))
        notebook.cells = notebook.cells[:first_test]
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            client = NotebookClient(
                notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(released)}}
            )
            client.execute()  # raises CellExecutionError, naming the cell, on the first failure
        errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{path.name}: {errors}"


def nbgrader(course_dir: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--Execute.timeout=600"],
        cwd=course_dir,
        capture_output=True,
        text=True,
        env=environment(COURSE_PROFILE="smoke"),
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_nbgrader_gives_a_filled_in_copy_full_marks_and_the_untouched_copy_zero(released, isolated):
    """Notebook 01 as an nbgrader assignment: generate it (recording the tests in the gradebook),
    submit the student copy twice, once with the instructor's solutions pasted in, and autograde."""
    from nbgrader.api import Gradebook

    name = "01_supervised_baseline.ipynb"
    course_dir = isolated / "grading"
    (course_dir / "source" / "ps1").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "notebooks" / name, course_dir / "source" / "ps1" / name)
    nbgrader(course_dir, "generate_assignment", "ps1")

    source_cells = nbformat.read(REPO_ROOT / "notebooks" / name, 4).cells
    solutions = {cell.id: cell.source for cell in source_cells
                 if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code"}  # fmt: skip
    written = [cell for cell in source_cells
               if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "markdown"]  # fmt: skip
    assert len(solutions) == 2 and len(written) == 1
    written_id, written_points = written[0].metadata["nbgrader"]["grade_id"], written[0].metadata["nbgrader"]["points"]
    solutions[written[0].id] = "The first 1,000 labels are not better: 0.003 is one standard deviation."
    filled = nbformat.read(released / name, as_version=4)
    for cell in filled.cells:
        cell.source = solutions.get(cell.id, cell.source)
    for student, notebook in [("filled", filled), ("untouched", nbformat.read(released / name, as_version=4))]:
        folder = course_dir / "submitted" / student / "ps1"
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / name)
    nbgrader(course_dir, "autograde", "ps1")

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        filled_score = gradebook.find_submission("ps1", "filled")
        untouched_score = gradebook.find_submission("ps1", "untouched")
        assert filled_score.max_score == 4 + written_points  # two exercises of 2 points and the written question
        assert (filled_score.score, untouched_score.score) == (4, 0)
        # The written answer waits for a person: no automatic score, flagged for manual grading.
        answered = gradebook.find_grade(written_id, name.removesuffix(".ipynb"), "ps1", "filled")
        assert (answered.auto_score, answered.max_score, answered.needs_manual_grade) == (None, written_points, True)
        assert filled_score.needs_manual_grade
        # Left as released ("YOUR ANSWER HERE"), it scores 0 without a person looking.
        blank = gradebook.find_grade(written_id, name.removesuffix(".ipynb"), "ps1", "untouched")
        assert (blank.auto_score, blank.needs_manual_grade) == (0, False)
        assert not untouched_score.needs_manual_grade
