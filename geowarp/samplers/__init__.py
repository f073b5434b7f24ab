"""Samplers: read an image at a grid of points.

Each sampler is an `geowarp.autodiff.Op`, a forward and its VJP:

* `BILINEAR`: ``forward(image, grid, fill, padding=..., align_corners=...)``
* `NEAREST`: the same signature; zero gradient w.r.t. the grid.

Most users call `geowarp.sample` instead.
"""

from ._bilinear import BILINEAR
from ._coordinates import MODES, PADDINGS
from ._nearest import NEAREST
from ._sample import check_settings, sample

__all__ = ["BILINEAR", "MODES", "NEAREST", "PADDINGS", "check_settings", "sample"]
