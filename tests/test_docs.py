"""The Sphinx docs build offline with warnings as errors, and cover the public API.

The build runs in a subprocess (Sphinx's own warnings must not meet pytest's
warnings-as-errors) on a copy of ``docs/``, so the source tree stays clean.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
GENERATED = ("_build", "generated", "auto_examples", "sg_execution_times.rst")
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
    "geowarp.jax",
    "geowarp.tensorflow",
]


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    for module in ("sphinx", "numpydoc", "myst_parser", "sphinx_gallery", "pydata_sphinx_theme"):
        pytest.importorskip(module, reason="the docs extra is not installed")
    for framework in ("torch", "jax", "tensorflow", "keras"):  # the API pages import them
        pytest.importorskip(framework)
    source = tmp_path_factory.mktemp("docs") / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns(*GENERATED))
    out = source / "_build" / "html"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(source), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


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
