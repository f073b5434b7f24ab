"""The built docs, loaded in headless Chromium: every picture loads and the maths renders.

Skipped where no ``chromium`` (or ``chromium-browser``) is on PATH. No WebDriver
is needed: the pages are served from 127.0.0.1 by ``http.server``, which adds
a small probe script to each HTML page; once the page and MathJax are done,
the probe writes each image's ``naturalWidth`` into the DOM, and
``chromium --dump-dom`` hands that DOM back.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from _docs_build import build_html, require_docs_extra

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

PAGES = [
    "index.html",
    "conventions.html",  # a gallery picture inside a page
    "gradients.html",  # the page with the most maths
    "stn.html",  # maths inside a table
    "auto_examples/plot_families.html",
    "auto_examples/plot_stn.html",
]
WITH_PICTURES = {
    "conventions.html",
    "auto_examples/plot_families.html",
    "auto_examples/plot_stn.html",
}
# Loads every image eagerly (the theme may mark some lazy), waits for them and
# for MathJax, then records what the browser saw as attributes.
PROBE = b"""<script>
window.addEventListener("load", async () => {
  const images = [...document.images];
  images.forEach((image) => { image.loading = "eager"; });
  await Promise.all(images.map((image) => image.complete ? null
    : new Promise((done) => { image.onload = image.onerror = done; })));
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  images.forEach((image) => image.setAttribute("data-natural-width", image.naturalWidth));
  document.documentElement.setAttribute("data-probe", "done");
});
</script>"""
# Text a reader should not see: TeX that MathJax left unrendered.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\frac")


class _ProbingHandler(SimpleHTTPRequestHandler):
    """Serves the built folder, with the probe added before ``</body>`` of each page."""

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if path.suffix != ".html" or not path.is_file():
            super().do_GET()
            return
        body = path.read_bytes().replace(b"</body>", PROBE + b"</body>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The built docs served on 127.0.0.1; yields the base URL."""
    require_docs_extra()
    html = build_html(tmp_path_factory)
    handler = functools.partial(_ProbingHandler, directory=str(html))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def dump_dom(url: str, profile: Path) -> str:
    """The DOM of ``url`` after headless Chromium ran its scripts."""
    command = [
        str(CHROMIUM),
        "--headless=new",
        "--no-sandbox",  # tests may run as root in containers
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Page(HTMLParser):
    """Images with the probe's widths, MathJax output, and the text a reader sees."""

    HIDDEN: ClassVar[set[str]] = {"script", "style", "pre", "code", "mjx-container", "textarea"}

    def __init__(self) -> None:
        super().__init__()
        self.probed = False
        self.images: list[tuple[str, str | None]] = []
        self.math_sources = 0  # Sphinx's math elements, each MathJax's to render
        self.math_rendered = 0
        self.text: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.probed = attributes.get("data-probe") == "done"
        if tag == "img":
            self.images.append((attributes.get("src") or "", attributes.get("data-natural-width")))
        if "math" in (attributes.get("class") or "").split():
            self.math_sources += 1
        if tag == "mjx-container":
            self.math_rendered += 1
        if tag in self.HIDDEN:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text.append(data)


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_chromium(site, page, tmp_path):
    parsed = _Page()
    parsed.feed(dump_dom(f"{site}/{page}", tmp_path / "profile"))
    assert parsed.probed, f"{page}: the probe did not finish (scripts failed or timed out)"
    broken = [src for src, width in parsed.images if not width or int(width) == 0]
    assert parsed.images or page not in WITH_PICTURES, f"{page} shows no picture"
    assert not broken, f"{page}: images that did not load: {broken}"
    assert parsed.math_rendered >= parsed.math_sources, (
        f"{page}: {parsed.math_sources} maths, {parsed.math_rendered} rendered by MathJax"
    )
    raw = RAW_TEX.findall(" ".join(parsed.text))
    assert not raw, f"{page}: unrendered TeX in the page text: {raw}"
