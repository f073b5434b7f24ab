"""The input window one output block reads, as `geowarp.sample` would read it.

The samplers read a padded copy of the WHOLE image at pixel coordinates
computed for the whole image (`geowarp.samplers._coordinates.source_pixels`).
Here the same pixel coordinates are computed, with the full image's size, and
the same neighbours are read from a window of that padded copy: the input
region plus, where the window reaches past the image, the ring's value (the
fill for ``"zeros"``/``"constant"``, zero otherwise, as the samplers' ring).
Window indices are the full indices minus the window's origin, integers, so
every gathered value, every fraction and every blend is the in-memory
sampler's, operation for operation: the block equals it to the last bit.
The block is read by numpy's sampler kernels on the window, or by their
numba-compiled loops once loaded (`geowarp.samplers._numpy.sample_window`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..samplers._coordinates import source_pixels


def pixels(grid: Any, in_shape: tuple[int, int], padding: str, align_corners: bool) -> Any:
    """Pixel coordinates ``(x, y)`` of ``grid`` (..., 2) in the full image, as the samplers'."""
    height, width = in_shape
    with np.errstate(over="ignore", invalid="ignore"):
        x, _ = source_pixels(grid[..., 0], width, padding, align_corners, np, with_slope=False)
        y, _ = source_pixels(grid[..., 1], height, padding, align_corners, np, with_slope=False)
    return x, y


def neighbour_span(coord: Any, mode: str) -> tuple[int, int]:
    """First and last padded-copy index that ``coord`` (pixels, never NaN) reads along an axis."""
    first, last = float(np.min(coord)), float(np.max(coord))
    if mode == "nearest":  # rounding is monotone: the ends round to the ends
        return int(np.round(first)), int(np.round(last))
    return int(np.floor(first)), int(np.floor(last)) + 1


def window(
    region: Any, origin: tuple[int, int], span: tuple[tuple[int, int], tuple[int, int]], ring: Any
) -> Any:
    """The padded copy's rows ``span[0]`` and columns ``span[1]`` (inclusive), (B, C, h, w).

    ``region`` is the part of the image inside them (None when there is
    none) and starts at pixel ``origin`` (row, col); ``ring`` (C,) is the
    padding ring's value, of the working dtype.
    """
    (top, bottom), (left, right) = span
    if (
        region is not None
        and origin == (top, left)
        and region.shape[2:] == (bottom - top + 1, right - left + 1)
        and region.dtype == ring.dtype
    ):
        return region  # all inside the image: no ring, and no copy of a block-sized region
    channels = ring.shape[0]
    items = 1 if region is None else region.shape[0]
    out = np.empty((items, channels, bottom - top + 1, right - left + 1), dtype=ring.dtype)
    out[...] = ring[:, None, None]
    if region is not None:
        row, col = origin[0] - top, origin[1] - left
        out[:, :, row : row + region.shape[2], col : col + region.shape[3]] = region
    return out
