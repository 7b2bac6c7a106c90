"""The first code cell of every notebook, in a Python that lacks course_utils (a fresh Colab
kernel, a wrong environment), says in one line what to run instead of a traceback; an import
error inside course_utils is not hidden."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # only what -S leaves
HINT = "course_utils is missing; from the course folder run: pip install -r requirements.txt\n"


def _first_code_cell(path: Path) -> str:
    return next(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem[:2])
def test_without_course_utils_the_first_cell_says_what_to_run(path, tmp_path):
    # -S: no site-packages, so neither course_utils nor anything else is importable
    script = tmp_path / "cell.py"
    script.write_text(_first_code_cell(path))
    done = subprocess.run([sys.executable, "-S", str(script)], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (1, HINT)


def test_an_import_error_inside_course_utils_still_shows(tmp_path):
    (tmp_path / "course_utils").mkdir()
    (tmp_path / "course_utils" / "__init__.py").write_text("import a_module_nobody_installed\n")
    script = tmp_path / "cell.py"
    script.write_text(_first_code_cell(NOTEBOOKS[0]))
    done = subprocess.run([sys.executable, "-S", str(script)], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert done.returncode == 1
    assert "No module named 'a_module_nobody_installed'" in done.stderr and HINT not in done.stderr
