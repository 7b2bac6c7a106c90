"""The student release of the notebooks, made by nbgrader (``python -m course_tools release``).

The course's notebooks are nbgrader source notebooks: every exercise has a solution cell
(its code between ``### BEGIN SOLUTION`` and ``### END SOLUTION``) and a locked test cell
(visible checks, then hidden tests between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS``). ``nbgrader generate_assignment`` turns them into student copies:
solutions replaced by ``raise NotImplementedError()``, hidden tests removed, outputs cleared,
the graded cells locked and checksummed. It needs a course directory with the notebooks in
``source/<assignment>/``; we build one in a temporary folder, run it with ``--no-db`` (nothing
to record: autograding uses its own course directory, see the README) and copy the result out.

nbgrader is an instructor extra (``pip install -e '.[instructor]'``), not needed to run the course.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from course_tools.common import CourseError, output_folder, require
from course_utils.runtime import REPO_ROOT, atomic_write

RELEASE = REPO_ROOT / "release"
ASSIGNMENT = "course"  # the assignment's name inside the temporary nbgrader course directory
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def leftovers(notebook: nbformat.NotebookNode) -> list[str]:
    """What must not reach a student: solution or hidden-test markers, stored outputs."""
    found = []
    for index, cell in enumerate(notebook.cells):
        found += [f"cell {index + 1}: {marker}" for marker in MARKERS if marker in cell.source]
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            found.append(f"cell {index + 1}: outputs")
    return found


def release(notebooks: list[Path], output: Path = RELEASE) -> list[Path]:
    """Write the student copies of ``notebooks`` into ``output``; returns their paths."""
    require("the release", "nbgrader")
    output_folder(output)
    with tempfile.TemporaryDirectory(prefix="course-release-") as temporary:
        course_dir = Path(temporary)
        source = course_dir / "source" / ASSIGNMENT
        source.mkdir(parents=True)
        for path in notebooks:
            shutil.copy(path, source / path.name)
        command = [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--no-db", "--force"]
        # run in course_dir, so that no nbgrader_config.py of the caller's folder applies
        done = subprocess.run([*command, "--log-level=ERROR"], cwd=course_dir, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise CourseError(f"nbgrader generate_assignment failed (exit {done.returncode}): " + " | ".join(last))
        written = []
        for path in notebooks:
            student = nbformat.read(course_dir / "release" / ASSIGNMENT / path.name, as_version=4)
            nbformat.validate(student)
            if problems := leftovers(student):
                raise CourseError(f"the student copy of {path.name} still holds {', '.join(problems)}")
            with atomic_write(output / path.name, "w") as f:
                nbformat.write(student, f)
            written.append(output / path.name)
    return written
