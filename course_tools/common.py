"""What the course's commands share: the one-line error they report, the instructor extra
some of them need, and the check of an output folder before any work."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from course_utils.runtime import ensure_writable

INSTALL_HINT = "pip install -e '.[instructor]'"


class CourseError(Exception):
    """A problem reported in one line, with exit status 1 and no traceback."""


def missing(*modules: str) -> list[str]:
    """Those of ``modules`` that are not installed."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def require(what: str, *modules: str) -> None:
    """A :class:`CourseError` naming those of ``modules``, needed by ``what``, that are not installed."""
    if absent := missing(*modules):
        raise CourseError(f"{what} needs {', '.join(absent)}, not installed; it is an instructor extra: {INSTALL_HINT}")


def output_folder(folder: Path) -> None:
    """Create ``folder`` if needed and write a probe file into it, before any work is done;
    a :class:`CourseError` naming it if that fails."""
    try:
        ensure_writable(folder)
    except OSError as error:
        raise CourseError(f"cannot write to the output folder {folder}: {error.strerror or error}") from None
