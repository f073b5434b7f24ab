"""The Sphinx docs build offline with warnings as errors, and cover the public API.

The build itself (``tests/_docs_build.py``) runs once per session and is
shared with ``tests/test_docs_browser.py``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from _docs_build import DOCS, build_html, require_docs_extra

# Every module whose public names the API reference must list.
MODULES = [
    "geowarp",
    "geowarp.grid",
    "geowarp.samplers",
    "geowarp.transforms",
    "geowarp.autodiff",
    "geowarp.backends",
    "geowarp.testing",
    "geowarp.estimate",
    "geowarp.torch",
    "geowarp.keras",
    "geowarp.dask",
    "geowarp.datasets",
    "geowarp.demo",
    "geowarp.jax",
    "geowarp.tensorflow",
]


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_docs_extra()
    return build_html(tmp_path_factory)


def _public_names() -> list[tuple[str, str]]:
    names = [
        (module, name) for module in MODULES for name in importlib.import_module(module).__all__
    ]
    return [*names, ("geowarp.cli", "main")]


def test_every_public_name_is_in_the_api_reference(html):
    import geowarp

    pages = "".join(
        path.read_text()
        for path in [*(html / "api").glob("*.html"), *(html / "generated").glob("*.html")]
    )
    ids = set(re.findall(r'id="([\w.-]+)"', pages))
    missing = []
    for module, name in _public_names():
        value = getattr(importlib.import_module(module), name)
        # a name re-exported by geowarp (gw.Affine, geowarp.transforms.Affine) is documented once
        same_as_top = getattr(geowarp, name, None) is value
        candidates = {f"{module}.{name}", f"module-{module}.{name}"}
        if same_as_top:
            candidates |= {f"geowarp.{name}", f"module-geowarp.{name}"}
        if not candidates & ids:
            missing.append(f"{module}.{name}")
    assert not missing, f"not in the API reference: {missing}"


def test_mathjax_is_served_locally(html):
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    scripts = [
        src
        for page in html.rglob("*.html")
        for src in re.findall(r'<script[^>]*src="([^"]*)"', page.read_text())
    ]
    assert not [src for src in scripts if re.match(r"(https?:)?//", src)], "a remote script"
    assert any(src.endswith("_static/mathjax/tex-chtml.js") for src in scripts)


def test_gallery_pages_have_images(html):
    pages = sorted((html / "auto_examples").glob("plot_*.html"))
    assert len(pages) == len(list((DOCS / "examples").glob("plot_*.py")))
    for page in pages:
        images = re.findall(r'<img[^>]*src="([^"]*sphx_glr_plot_[^"]*)"', page.read_text())
        assert images, f"{page.name} shows no picture"
        assert all((page.parent / src).is_file() for src in images)
