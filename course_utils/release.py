"""The student release of the notebooks, made by nbgrader (``python -m course_utils.course release``).

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

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from course_utils.runtime import REPO_ROOT, atomic_write, ensure_writable

RELEASE = REPO_ROOT / "release"
ASSIGNMENT = "course"  # the assignment's name inside the temporary nbgrader course directory
INSTALL_HINT = "pip install -e '.[instructor]'"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


class ReleaseError(Exception):
    """A problem reported in one line, with exit status 1 and no traceback."""


def nbgrader_command() -> list[str]:
    """The command that runs nbgrader with this Python, or a ReleaseError saying how to install it."""
    if importlib.util.find_spec("nbgrader") is None:
        raise ReleaseError(f"nbgrader is not installed; it is an instructor extra: {INSTALL_HINT}")
    return [sys.executable, "-m", "nbgrader"]


def run_nbgrader(course_dir: Path, *args: str) -> None:
    """``nbgrader <args>`` in ``course_dir`` (so that no nbgrader_config.py of the caller's folder applies)."""
    command = [*nbgrader_command(), *args]
    done = subprocess.run(command, cwd=course_dir, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise ReleaseError(f"nbgrader {args[0]} failed (exit {done.returncode}): " + " | ".join(last))


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
    nbgrader_command()  # a missing nbgrader stops here, before any work
    try:
        ensure_writable(output)
    except OSError as error:
        raise ReleaseError(f"cannot write to the output folder {output}: {error.strerror or error}") from None
    with tempfile.TemporaryDirectory(prefix="course-release-") as temporary:
        course_dir = Path(temporary)
        source = course_dir / "source" / ASSIGNMENT
        source.mkdir(parents=True)
        for path in notebooks:
            shutil.copy(path, source / path.name)
        run_nbgrader(course_dir, "generate_assignment", ASSIGNMENT, "--no-db", "--force", "--log-level=ERROR")
        written = []
        for path in notebooks:
            student = nbformat.read(course_dir / "release" / ASSIGNMENT / path.name, as_version=4)
            nbformat.validate(student)
            if problems := leftovers(student):
                raise ReleaseError(f"the student copy of {path.name} still holds {', '.join(problems)}")
            with atomic_write(output / path.name, "w") as f:
                nbformat.write(student, f)
            written.append(output / path.name)
    return written
