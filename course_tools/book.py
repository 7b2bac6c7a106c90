"""The course as a static HTML book (``python -m course_tools book``).

Sphinx with myst-nb and the book theme (configuration in ``book/``) renders the six notebooks
with their stored outputs, never executing them, and the course's pages: the README as the
introduction, INSTRUCTORS.md, RESULTS.md and NOTES.md. The notebooks are first copied into a
staging folder and made readable without a kernel:

- the exercises appear as a student gets them: nbgrader's own preprocessors replace the
  solutions and remove the hidden tests and mark schemes (the stored outputs stay);
- an ipywidgets output becomes what its saved state holds: a tqdm bar its final line of text,
  a slider explorer its settings and the figure it showed, a widget with no saved state a note;
- a plotly output becomes a ``course-plotly`` block that ``book/_static/course.js`` draws with
  the local plotly.js, and that shows the output's PNG where JavaScript does not run.

Everything the pages load is local (MathJax from sphinx-mathjax-offline, plotly.js from the
plotly package), so the book reads offline. It needs the instructor extra:
``pip install -e '.[instructor]'``.
"""

from __future__ import annotations

import html
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from course_tools.common import CourseError, output_folder, require
from course_utils.runtime import REPO_ROOT

BOOK_CONFIG = REPO_ROOT / "book"
BOOK_OUTPUT = REPO_ROOT / "_build" / "book"
PAGES = ("README.md", "INSTRUCTORS.md", "RESULTS.md", "NOTES.md")
NEEDS = ("sphinx", "myst_nb", "sphinx_book_theme", "nbgrader")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PLOTLY = "application/vnd.plotly.v1+json"
NO_STATE_NOTE = "An interactive control (ipywidgets) appears here when the notebook runs in Jupyter."


def _display(data: dict[str, Any]) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("display_data", data=data)


def _note(text: str) -> nbformat.NotebookNode:
    """A line of prose in place of an output, wrapped as a paragraph (plain text is a wide code block)."""
    return _display({"text/html": f'<p class="course-note">{html.escape(text)}</p>', "text/plain": text})


def _text(value: str) -> str:
    """A widget's HTML value as plain text (tqdm pads with figure spaces and escapes <)."""
    return html.unescape(value).replace("\u2007", " ").replace("\u200b", "").strip()


def _progress_line(children: list[dict[str, Any]]) -> str:
    """tqdm's notebook bar (HTML, progress, HTML) as the line tqdm prints in a terminal."""
    left, bar, right = (child["state"] for child in children)
    filled = round(10 * bar.get("value", 0) / bar["max"]) if bar.get("max") else 0
    return f"{_text(left.get('value', ''))}|{'█' * filled}{' ' * (10 - filled)}| {_text(right.get('value', ''))}"


def _children(model: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
    return [state[child.removeprefix("IPY_MODEL_")] for child in model["state"].get("children", [])]


def _controls(model: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """Each slider, dropdown or box of ``model``'s tree as ``description = value``."""
    found = [control for child in _children(model, state) for control in _controls(child, state)]
    fields = model["state"]
    if "value" in fields and fields.get("description") and not model["model_name"].startswith("HTML"):
        found.append(f"{fields['description']} = {fields['value']}")
    return found


def _stored_outputs(model: dict[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
    """The outputs that the Output widgets in ``model``'s tree held when the notebook was saved."""
    found = list(model["state"].get("outputs", [])) if model["model_name"] == "OutputModel" else []
    for child in _children(model, state):
        found += _stored_outputs(child, state)
    return found


def static_widget(model_id: str, state: dict[str, Any]) -> list[nbformat.NotebookNode]:
    """What a widget output shows without a kernel, from the notebook's saved widget state."""
    model = state.get(model_id)
    if model is None:
        return [_note(NO_STATE_NOTE)]
    children = _children(model, state)
    kinds = [child["model_name"] for child in children]
    if len(kinds) == 3 and kinds[1] in ("FloatProgressModel", "IntProgressModel"):
        return [_display({"text/plain": _progress_line(children)})]
    controls = _controls(model, state)
    note = "In Jupyter this cell shows controls"
    note += f" ({', '.join(controls)} when saved)" if controls else ""
    note += " that redraw its output; the book shows the output as it was saved."
    return [_note(note)] + [nbformat.from_dict(o) for o in _stored_outputs(model, state)]


def static_plotly(data: dict[str, Any]) -> nbformat.NotebookNode:
    """A plotly output as HTML: the figure for course.js to draw, and the stored PNG (or a note) without it."""
    figure = json.dumps(data[PLOTLY]).replace("</", "<\\/")
    fallback = (
        f'<img class="course-plotly-static" alt="static image of the interactive figure" '
        f'src="data:image/png;base64,{data["image/png"]}">'
        if "image/png" in data
        else '<p class="course-plotly-static course-note">An interactive plotly figure: it needs JavaScript.</p>'
    )
    return _display(
        {"text/html": f'<div class="course-plotly"><script type="application/json">{figure}</script>{fallback}</div>'}
    )


def readable(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` as the book shows it: student exercises, static widgets and plotly blocks."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearSolutions

    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    for preprocessor in (ClearSolutions(), ClearHiddenTests(), ClearMarkScheme()):
        notebook, _ = preprocessor.preprocess(notebook, {})
    state = notebook.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.source = "\n".join(line for line in cell.source.splitlines() if line.strip() != "# NBVAL_IGNORE_OUTPUT")
        outputs = []
        for output in cell.outputs:
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                outputs += static_widget(data[WIDGET_VIEW]["model_id"], state)
            elif PLOTLY in data:
                outputs.append(static_plotly(data))
            else:
                outputs.append(output)
        cell.outputs = outputs
    return notebook


def build(output: Path = BOOK_OUTPUT, strict: bool = False) -> Path:
    """Build the book into ``output`` (``strict``: any Sphinx warning fails); returns its index.html."""
    require("the book", *NEEDS)
    output_folder(output)
    from sphinx.cmd.build import build_main

    with tempfile.TemporaryDirectory(prefix="course-book-") as temporary:
        source = Path(temporary) / "source"
        shutil.copytree(BOOK_CONFIG, source)
        for name in PAGES:
            shutil.copy(REPO_ROOT / name, source / name)
        (source / "notebooks").mkdir()
        for path in sorted((REPO_ROOT / "notebooks").glob("0[1-9]_*.ipynb")):
            nbformat.write(readable(nbformat.read(path, as_version=4)), source / "notebooks" / path.name)
        arguments = ["-b", "html", "-q", "-d", str(Path(temporary) / "doctrees"), str(source), str(output)]
        if build_main(arguments + (["-W", "--keep-going"] if strict else [])) != 0:
            raise CourseError(f"Sphinx could not build the book into {output} (its messages are above)")
    return output / "index.html"
