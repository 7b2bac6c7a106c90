"""What a reader sees: no stored output, results file or document names a folder of the machine
that wrote it, and every number a notebook's text quotes from its results (marked
``<span class="result">0.906</span>``) is still what its results file holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from course_utils.data.catalogue import DEBIAN_FASHION_MNIST
from course_utils.runtime import REPO_ROOT, shown_path

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("0[1-6]_*.ipynb"))
SKIPPED = {".git", ".venv", ".ci-data", ".ci-runs", "runs", "release", "checkpoints", "node_modules"}

# A token that starts at "/" not preceded by a word character, "/", ":", "$", "~" or ".":
# "lr/50", "1/sqrt(d)", "https://..." and "$COURSE_DATA_DIR/x" are not absolute paths.
PATH = re.compile(r"(?<![\w/:$~.])/([\w.-]+)(?:/[\w.-]+)*")
# Folders that are the same on every machine, which the data README names for where to look.
PUBLIC = (str(DEBIAN_FASHION_MNIST),)


def absolute_paths(text: str) -> list[str]:
    """The absolute paths of this machine in ``text``: tokens like ``/a/b`` whose first folder
    exists here (``/work``, ``/usr``, ``/home``, ...), and the course folder itself."""
    found = [
        match[0] for match in PATH.finditer(text) if Path("/", match[1]).exists() and not match[0].startswith(PUBLIC)
    ]
    return found + [str(REPO_ROOT)] * text.count(str(REPO_ROOT))


def test_absolute_paths_are_found_and_other_slashes_are_not():
    text = "saved /usr/lib/x.json; lr/50 and 1/sqrt(d); https://arxiv.org/abs/2002.05709; results/01.json"
    assert absolute_paths(text + "; $COURSE_DATA_DIR/cifar10 (ImageFolder layout)") == ["/usr/lib/x.json"]
    assert absolute_paths("from /no-such-folder-here/x") == []  # not a folder of this machine
    assert absolute_paths(f"apt puts it in {DEBIAN_FASHION_MNIST}/") == []  # the same on every machine


def test_shown_path_is_relative_to_the_course_or_its_folder_variable(monkeypatch, tmp_path):
    assert shown_path(REPO_ROOT / "checkpoints" / "laptop" / "a.pt") == "checkpoints/laptop/a.pt"
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "datasets"))
    assert shown_path(tmp_path / "datasets" / "cifar10") == "$COURSE_DATA_DIR/cifar10"
    assert shown_path("/elsewhere/x") == "/elsewhere/x"


def _notebook_text(path: Path) -> str:
    """The markdown and every stored text output of a notebook (images left out)."""
    parts = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(value for key, value in output.get("data", {}).items() if not key.startswith("image/"))
            parts.extend(output.get("traceback", []))
    return "\n".join(part if isinstance(part, str) else "".join(part) for part in parts)


def _documents() -> list[Path]:
    documents = [*NOTEBOOKS, *sorted((REPO_ROOT / "results").glob("*.json"))]
    for path in sorted(REPO_ROOT.rglob("*.md")):
        parts = path.relative_to(REPO_ROOT).parts
        if SKIPPED.isdisjoint(parts) and (parts[0] != "data" or path.name == "README.md"):
            documents.append(path)
    return documents


@pytest.mark.parametrize("path", _documents(), ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_no_absolute_path_of_this_machine(path):
    text = _notebook_text(path) if path.suffix == ".ipynb" else path.read_text()
    found = absolute_paths(text)
    assert not found, f"{path.relative_to(REPO_ROOT)} names folders of this machine: {sorted(set(found))}"


QUOTED = re.compile(r'<span class="result">([^<]*)</span>')
NUMBER = re.compile(r"[-−]?\d[\d,]*(?:\.(\d+))?( ?%)?")


def _numbers(value: object) -> list[float]:
    """Every number in a results file's metrics, nested lists and dicts included."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [number for item in value for number in _numbers(item)]
    return []


def quoted_number_found(text: str, numbers: list[float]) -> bool:
    """Whether the quoted ``text`` ("0.906", "45%", "45 %", "-0.970", "1,106") is one of ``numbers``
    written with as many decimals (a percentage: 100 times the number)."""
    match = NUMBER.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is marked as a quoted result but is not a number like 0.906, 45% or 1,106")
    decimals, percent = len(match[1] or ""), bool(match[2])
    quoted = match[0].rstrip(" %").replace(",", "").replace("−", "-")
    return any(f"{(100 if percent else 1) * number:.{decimals}f}" == quoted for number in numbers)


def test_quoted_numbers_are_compared_at_their_precision():
    assert quoted_number_found("0.906", [0.90602]) and quoted_number_found("45%", [0.4522])
    assert quoted_number_found("45 %", [0.4522]) and not quoted_number_found("45", [0.4522])
    assert quoted_number_found("−0.970", [-0.9702]) and quoted_number_found("1,106", [1106.2])
    assert not quoted_number_found("0.916", [0.90602]) and not quoted_number_found("46%", [0.4522])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_numbers_quoted_in_the_text_are_in_the_results_file(notebook):
    (results,) = (REPO_ROOT / "results").glob(f"{notebook.name[:2]}_*.json")
    numbers = _numbers(json.loads(results.read_text())["metrics"])
    cells = [cell.source for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "markdown"]
    takeaway = [source for source in cells if source.startswith("## What to take away")]
    assert takeaway and QUOTED.search(takeaway[0]), f"{notebook.name}: its take-away marks no quoted result"
    stale = [text for source in cells for text in QUOTED.findall(source) if not quoted_number_found(text, numbers)]
    assert not stale, f"{notebook.name} quotes {stale}, which {results.relative_to(REPO_ROOT)} does not hold"
