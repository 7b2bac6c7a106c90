"""Notebook cells into the package, d2l's ``#@save`` and nbdev's ``#| export`` done small.

A code cell whose first line is ``#| export <module>`` is also part of
``course_utils/methods/<module>.py``: the notebook is where the code is written and read, the
module is where other notebooks and the tests import it from. ``python -m course_tools.export``
writes the modules; ``--check`` only compares them and fails when a notebook and its module
disagree (CI runs it through ``tests/test_export.py``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(r"#\| export (\w+)\s*$")
DROPPED = ("### BEGIN SOLUTION", "### END SOLUTION")  # nbgrader's markers: the module keeps the solution


def exported_cells(notebook: Path) -> dict[str, list[str]]:
    """The sources of ``notebook``'s exported cells, per module name, in notebook order."""
    modules: dict[str, list[str]] = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        first, _, body = cell.source.partition("\n")
        if cell.cell_type == "code" and (mark := MARK.match(first)):
            lines = [line for line in body.splitlines() if line.strip() not in DROPPED]
            modules.setdefault(mark.group(1), []).append("\n".join(lines).strip("\n"))
    return modules


def module_text(notebook: Path, cells: list[str]) -> str:
    """A module's text: a header naming its notebook, then the cells, two blank lines apart."""
    header = (f'"""Generated from the cells marked ``#| export`` in notebooks/{notebook.name}:\n'
              'edit the notebook, then run ``python -m course_tools.export``."""\n')  # fmt: skip
    return header + "\n" + "\n\n\n".join(cells) + "\n"


def modules(root: Path = ROOT) -> dict[Path, str]:
    """Every module the notebooks under ``root`` export, with its text."""
    found: dict[Path, str] = {}
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        for name, cells in exported_cells(notebook).items():
            path = root / "course_utils" / "methods" / f"{name}.py"
            if path in found:
                raise ValueError(f"two notebooks export to {path.relative_to(root)}; one module has one notebook")
            found[path] = module_text(notebook, cells)
    return found


def stale(root: Path = ROOT) -> list[str]:
    """The modules whose file differs from what their notebook exports, and the files under
    ``course_utils/methods`` that no notebook exports (``__init__.py`` aside)."""
    wanted = modules(root)
    wrong = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    folder = root / "course_utils" / "methods"
    orphans = [path for path in folder.glob("*.py") if path.name != "__init__.py" and path not in wanted]
    return [str(path.relative_to(root)) for path in sorted(wrong + orphans)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when a module is out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"{path} differs from its notebook's exported cells; run python -m course_tools.export")
        return 1 if out_of_date else 0
    for path, text in modules().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
