"""Sampling one output block from the input region it reads, as `geowarp.sample` would.

The samplers read a padded copy of the WHOLE image at pixel coordinates
computed for the whole image (`geowarp.samplers._coordinates.source_pixels`).
Here the same pixel coordinates are computed, with the full image's size, and
the same neighbours are read from a window of that padded copy: the input
region plus, where the window reaches past the image, the ring's value (the
fill for ``"zeros"``/``"constant"``, zero otherwise, as the samplers' ring).
Window indices are the full indices minus the window's origin, integers, so
every gathered value, every fraction and every blend is the in-memory
sampler's, operation for operation: the block equals it to the last bit.
Floating blocks whose grid has the image's dtype run numpy's sampler kernels
on the window (`geowarp.samplers._numpy.sample_window`), several times faster;
`sample_window` here reads the others (integer images), as the samplers
promote them.
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


def sample_window(values: Any, x: Any, y: Any, corner: tuple[int, int], mode: str) -> Any:
    """Read ``values`` (B or 1, C, h, w), whose top-left is padded index ``corner``, at pixels
    ``x``, ``y`` (B, H_out, W_out): (B, C, H_out, W_out) in the values' dtype."""
    width = values.shape[-1]
    # Gathers by flat index into each item's (C, h * w) plane: the same values as
    # ``values[items, :, rows, cols]``, about twice as fast as numpy's advanced indexing.
    planes = np.reshape(values, (*values.shape[:2], -1))

    shared = planes.shape[0] != x.shape[0]  # one image item read by every transform

    def gather(flat: Any) -> Any:
        parts = [
            np.take(planes[0 if shared else item], flat[item], axis=1)
            for item in range(flat.shape[0])
        ]
        return parts[0][None] if len(parts) == 1 else np.stack(parts)

    if mode == "nearest":  # half-way ties to even, as the samplers
        rows = (np.round(y) - corner[0]).astype(np.intp)
        cols = (np.round(x) - corner[1]).astype(np.intp)
        return gather(rows * width + cols)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0  # the fractions, as the samplers' ``x - x0``
    flat = (y0 - corner[0]).astype(np.intp) * width + (x0 - corner[1]).astype(np.intp)
    fx, fy = fx[:, None], fy[:, None]

    def read(dy: int, dx: int) -> Any:
        return gather(flat + (dy * width + dx))

    # two lerps along x, one along y, in the samplers' order and rounding
    left = read(0, 0)
    top = (read(0, 1) - left) * fx + left
    left = read(1, 0)
    bottom = (read(1, 1) - left) * fx + left
    return top + (bottom - top) * fy
