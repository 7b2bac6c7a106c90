"""The HTML book (``python -m course_tools book``), read in a real browser.

The staging of the notebooks is tested on hand-made outputs; then the book is built (Sphinx
warnings are errors here) and every page is opened in Debian's headless Chromium, driven by
playwright, with every request outside the loopback server refused. Without the book's
packages or Chromium these tests skip, except where ``COURSE_REQUIRE_BROWSER=1`` (CI) or
``CI=true``, where they fail. A screenshot of notebook 03's page is left in
``_build/screenshots/`` for a person to look at."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from course_tools import book
from course_tools.common import INSTALL_HINT, missing
from course_tools.release import MARKERS
from course_utils.runtime import REPO_ROOT, env_flag

# Sphinx 9 warns that myst-parser and the book theme use an API it will remove in Sphinx 11: theirs to fix.
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("0[1-6]_*.ipynb"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "_build" / "screenshots"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def require(missing: list[str]) -> None:
    """Skip for what is missing, or fail where the browser test is required (CI)."""
    if not missing:
        return
    message = f"the book's browser test needs {', '.join(missing)}: {INSTALL_HINT}; apt-get install chromium"
    if env_flag("COURSE_REQUIRE_BROWSER", os.environ.get("CI", "").lower() == "true"):
        pytest.fail(f"required here, but missing: {message}")
    pytest.skip(message)


# ---------------------------------------------------------------- staging, on hand-made outputs


def model(name: str, **state) -> dict:
    return {"model_name": name, "state": state}


def test_a_progress_bar_becomes_the_line_tqdm_prints():
    state = {
        "bar": model("HBoxModel", children=["IPY_MODEL_left", "IPY_MODEL_progress", "IPY_MODEL_right"]),
        "left": model("HTMLModel", value="SimSiam:\u2007100%"),
        "progress": model("FloatProgressModel", value=2.0, max=2.0),
        "right": model("HTMLModel", value="\u20072/2\u2007[00:31&lt;00:00,\u200715.6s/it]"),
        "half": model("HBoxModel", children=["IPY_MODEL_left", "IPY_MODEL_halfway", "IPY_MODEL_right"]),
        "halfway": model("IntProgressModel", value=3, max=10),
    }
    [done] = book.static_widget("bar", state)
    assert done.data == {"text/plain": "SimSiam: 100%|██████████| 2/2 [00:31<00:00, 15.6s/it]"}
    [partly] = book.static_widget("half", state)
    assert partly.data["text/plain"].startswith("SimSiam: 100%|███       |")  # 3 of 10 filled


def test_a_slider_explorer_shows_its_settings_and_the_figure_it_held():
    figure = {
        "output_type": "display_data",
        "metadata": {},
        "data": {"image/png": "iVBORw0K", "text/plain": "<Figure>"},
    }
    state = {
        "box": model("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_out"]),
        "slider": model("FloatSliderModel", description="strength", value=0.5, min=0.0, max=1.0),
        "out": model("OutputModel", outputs=[figure]),
    }
    note, image = book.static_widget("box", state)
    assert "strength = 0.5" in note.data["text/plain"]
    assert image.data == figure["data"]


def test_a_widget_without_saved_state_becomes_a_note():
    [note] = book.static_widget("never-saved", {})
    assert note.data["text/plain"] == book.NO_STATE_NOTE
    assert note.data["text/html"] == f'<p class="course-note">{book.NO_STATE_NOTE}</p>'


def test_a_plotly_output_keeps_its_figure_and_its_png():
    figure = {"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4]}], "layout": {"title": {"text": "</script> x"}}}
    html = book.static_plotly({book.PLOTLY: figure, "image/png": "iVBORw0K"}).data["text/html"]
    assert '<img class="course-plotly-static"' in html and 'src="data:image/png;base64,iVBORw0K"' in html
    stored = html.split('<script type="application/json">')[1].split("</script>")[0]
    assert json.loads(stored) == figure, "the figure must survive, a '</script>' in it escaped"
    without_png = book.static_plotly({book.PLOTLY: figure}).data["text/html"]
    assert "<img" not in without_png and "needs JavaScript" in without_png


# ---------------------------------------------------------------- what each notebook shows


def stored_figures(path: Path) -> tuple[int, int]:
    """Counted from the .ipynb alone: the PNG figures a reader sees (outputs' PNGs, plotly ones
    included, and those that the notebook's saved Output widgets hold) and the plotly outputs
    that also carry a PNG."""
    notebook = json.loads(path.read_text())
    state = notebook["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})

    def in_widget(model_id: str) -> int:
        fields = state.get(model_id, {}).get("state", {})
        found = sum("image/png" in output.get("data", {}) for output in fields.get("outputs", []))
        return found + sum(in_widget(child[len("IPY_MODEL_") :]) for child in fields.get("children", []))

    pngs = plotly_with_png = 0
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            pngs += "image/png" in data
            plotly_with_png += "image/png" in data and book.PLOTLY in data
            if book.WIDGET_VIEW in data:
                pngs += in_widget(data[book.WIDGET_VIEW]["model_id"])
    return pngs, plotly_with_png


def plotly_outputs(path: Path) -> int:
    notebook = json.loads(path.read_text())
    return sum(book.PLOTLY in o.get("data", {}) for cell in notebook["cells"] for o in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_the_staged_notebook_hides_solutions_and_keeps_every_figure(path):
    require(missing(*book.NEEDS))
    staged = book.readable(nbformat.read(path, as_version=4))
    text = json.dumps(staged)
    assert not [marker for marker in MARKERS if marker in text], "solutions or hidden tests reach the book"
    assert "widgets" not in staged.metadata and book.WIDGET_VIEW not in text and book.PLOTLY not in text
    pngs = sum("image/png" in o.get("data", {}) for cell in staged.cells for o in cell.get("outputs", []))
    assert pngs == stored_figures(path)[0] - stored_figures(path)[1]  # a plotly PNG moves into its HTML block


# ---------------------------------------------------------------- the book in a browser


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[str]:
    """The book, built once, served on a loopback port; yields its base URL."""
    require(missing(*book.NEEDS, "playwright") + ([] if CHROMIUM.exists() else [str(CHROMIUM)]))
    output = tmp_path_factory.mktemp("book")
    assert book.build(output, strict=True) == output / "index.html"
    handler = functools.partial(QuietHandler, directory=str(output))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Visit:
    """One page in a fresh context: what it logged as errors, and any request off this machine."""

    def __init__(self, browser, url: str, javascript: bool = True) -> None:
        self.problems: list[str] = []
        self.context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._local_only)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        if javascript:  # without JavaScript Chromium cancels the theme's preloaded scripts, which is no fault
            self.page.on("requestfailed", self._failed)
        self.page.goto(url, wait_until="load")
        self.page.wait_for_load_state("networkidle")

    def _failed(self, request) -> None:
        if request.failure != "net::ERR_ABORTED":  # what a load cut short by the next page's reports
            self.problems.append(f"failed: {request.url} {request.failure}")

    def _local_only(self, route) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.problems.append(f"request off this machine: {route.request.url}")
            route.abort()

    def images(self) -> list[int]:
        """The natural width of every image in the page's article (0: it did not load)."""
        return self.page.eval_on_selector_all("article img", "els => els.map(e => e.complete ? e.naturalWidth : 0)")

    def count(self, selector: str) -> int:
        return self.page.eval_on_selector_all(selector, "els => els.length")


def test_every_page_loads_without_errors_or_requests_off_the_machine(site, browser):
    pages = ["index.html", "INSTRUCTORS.html", "RESULTS.html", "NOTES.html", "search.html", "genindex.html"]
    pages += [f"notebooks/{path.stem}.html" for path in NOTEBOOKS]
    for name in pages:
        visit = Visit(browser, site + name)
        assert visit.problems == [], name
        assert visit.count("article h1") == 1 or name in ("search.html", "genindex.html"), name
        visit.context.close()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_a_notebook_page_shows_every_figure_and_its_maths(site, browser, path):
    pngs, plotly_with_png = stored_figures(path)
    url = f"{site}notebooks/{path.stem}.html"
    static = Visit(browser, url, javascript=False)
    widths = static.images()
    assert len(widths) == pngs and all(widths), f"{path.stem}: {len(widths)} images (widths {widths}), expected {pngs}"
    static.context.close()

    live = Visit(browser, url)
    assert live.problems == []
    assert live.count(".course-plotly .js-plotly-plot") == plotly_outputs(path), "each plotly figure drawn"
    assert len(live.images()) == pngs - plotly_with_png, "with JavaScript a plotly figure replaces its PNG"
    maths = live.count("article .math")
    assert maths > 0 and live.count("article .math mjx-container") == maths, "every formula typeset by MathJax"
    assert live.count("mjx-merror") == 0, "a formula MathJax could not read"
    text = live.page.inner_text("article")
    assert not re.search(r"(?<!\d)0%\|", text) and "interactive(children=" not in text, "a widget as its raw text"
    if path.stem.startswith("03"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        live.page.screenshot(path=str(SCREENSHOTS / f"{path.stem}.png"), full_page=True)
    live.context.close()


def test_navigation_reaches_every_page_in_course_order(site, browser):
    visit = Visit(browser, site + "index.html")
    links = visit.page.eval_on_selector_all("nav.bd-docs-nav a", "els => els.map(e => e.getAttribute('href'))")
    expected = [f"notebooks/{path.stem}.html" for path in NOTEBOOKS] + [
        "INSTRUCTORS.html",
        "RESULTS.html",
        "NOTES.html",
    ]
    assert links == ["#", *expected], "the front page, then the notebooks and the course's pages"
    visit.page.click(f"nav.bd-docs-nav a[href='{expected[0]}']")
    for name in expected[1:]:
        visit.page.click("a.right-next")
        visit.page.wait_for_load_state()
        assert visit.page.url == site + name
    assert visit.problems == []
    visit.context.close()


def test_the_book_command_writes_the_site_or_says_what_is_missing(monkeypatch, tmp_path, capsys):
    from course_tools import course

    monkeypatch.setattr("course_tools.common.missing", lambda *names: ["myst_nb"])
    assert course.main(["book", "--output", str(tmp_path / "site")]) == 1
    expected = f"error: the book needs myst_nb, not installed; it is an instructor extra: {INSTALL_HINT}\n"
    assert capsys.readouterr().err == expected
    assert not (tmp_path / "site").exists()
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setattr("course_tools.common.missing", lambda *names: [])
    assert course.main(["book", "--output", str(blocked / "site")]) == 1
    assert f"cannot write to the output folder {blocked / 'site'}" in capsys.readouterr().err
