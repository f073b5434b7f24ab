"""Sphinx configuration: builds offline with ``-W`` (no intersphinx, MathJax served locally)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))  # the gallery's Pillow image scraper

# TensorFlow's C++ start-up notices are not build output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import geowarp  # noqa: E402  (installed: ``pip install -e ".[docs]"``)

project = "geowarp"
author = "geowarp developers"
copyright = "geowarp developers"
version = release = geowarp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    # The package directory is named with dashes; it copies MathJax into
    # _static/mathjax and points mathjax_path at it, so no CDN is read.
    "sphinx-mathjax-offline",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "_templates", "examples/README.txt"]
templates_path = ["_templates"]

# Offline: intersphinx is deliberately not loaded, and nothing else fetches.
nitpicky = False
default_role = "py:obj"  # `name` in docstrings links where it resolves, else stays code

# API reference: autosummary writes one stub page per public name.
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # numpydoc's type lines say it; hints repeat it noisily
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # the class template lists members via autodoc
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # matplotlib is not a dependency: the examples draw with Pillow and this
    # scraper (a dotted string, so the config stays picklable) collects them.
    "image_scrapers": ("pillow_scraper.scrape_pillow_images",),
    "reset_modules": (),
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    # its page loads jQuery and DataTables from a CDN: not offline
    "write_computation_times": False,
    "plot_gallery": "True",
}

html_theme = "pydata_sphinx_theme"
html_title = "geowarp"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # A page's contents on the right, except on gallery pages: there a
    # "Show Source" link alone took the width the pictures and code need.
    "secondary_sidebar_items": {
        "*": ["page-toc", "sourcelink"],
        "api/*": ["page-toc", "sourcelink"],
        "generated/*": ["page-toc", "sourcelink"],
    },
}
# The user-guide pages are top-level, so their "Section Navigation" column
# was empty: drop it there (gallery and API pages keep theirs).
html_sidebars: dict[str, list[str]] = {"*": []}
html_static_path: list[str] = []
