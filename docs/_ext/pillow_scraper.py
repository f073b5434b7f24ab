"""A sphinx-gallery image scraper for Pillow images (matplotlib is not a docs dependency).

After each code block, every ``PIL.Image.Image`` in the example's globals that
was not shown before is saved as one of the example's pictures, in the order
the variables were defined. An example shows a picture by keeping it in a
variable; intermediate arrays stay numpy and are not shown.
"""

from __future__ import annotations

from typing import Any

from PIL import Image
from sphinx_gallery.scrapers import figure_rst

_SHOWN = "_sphinx_gallery_shown"  # marks an image as saved, so a later block skips it


def scrape_pillow_images(block: Any, block_vars: dict[str, Any], gallery_conf: Any) -> str:
    """Save the example's new Pillow images and return the reST that shows them."""
    paths = []
    iterator = block_vars["image_path_iterator"]
    for value in list(block_vars["example_globals"].values()):
        if isinstance(value, Image.Image) and not getattr(value, _SHOWN, False):
            setattr(value, _SHOWN, True)
            path = next(iterator)
            value.save(path)
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])
