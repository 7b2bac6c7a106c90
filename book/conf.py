"""Sphinx configuration of the course's book; `python -m course_tools book` builds it
from a staging copy of this folder (see course_tools/book.py), so paths here are relative to it."""

from pathlib import Path

import plotly

project = "Contrastive and self-supervised representation learning"
author = "the course's authors"
html_title = "Contrastive and self-supervised learning"

extensions = ["myst_nb", "sphinx-mathjax-offline"]  # the latter serves MathJax 3 from _static, no CDN
exclude_patterns = ["README.md", "_build"]  # README.md is included by index.md
suppress_warnings = ["myst.header"]  # notebooks start at a level-2 heading under their title

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the stored outputs are the measured runs
nb_ipywidgets_js = {}  # widgets are made static when the notebooks are staged; no widget CDN
nb_merge_streams = True

html_theme = "sphinx_book_theme"
html_theme_options = {"show_navbar_depth": 1, "use_download_button": False, "home_page_in_toc": True}
html_copy_source = False
html_context = {"default_mode": "light"}  # an empty mode makes the theme log a console error
html_favicon = "_static/favicon.svg"  # else the browser asks for /favicon.ico, a 404
html_show_sourcelink = False
html_static_path = ["_static", str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")]
html_js_files = ["course.js"]
html_css_files = ["course.css"]


def _plotly_where_needed(app, pagename, templatename, context, doctree):
    """plotly.js (4 MB) only on the pages that hold a plotly figure."""
    if "course-plotly" in context.get("body", ""):
        app.add_js_file("plotly.min.js")


def setup(app):
    app.connect("html-page-context", _plotly_where_needed)
