"""Nearest-neighbour sampling and its vector-Jacobian product.

Ties (a coordinate exactly half-way between two pixel centres) round to the
even pixel index, as ``grid_sample`` does. The gradient w.r.t. the grid is zero.
"""

from __future__ import annotations

from typing import Any

from .._namespace import array_namespace
from ..autodiff import Op
from ._bilinear import _flat, _image_and_fill_cotangents, _to_channels_first, _to_rows
from ._coordinates import flat_index, padded_channels_last, source_pixels


def _rows(
    grid: Any, padded_shape: tuple[int, ...], padding: str, align_corners: bool, xp: Any
) -> Any:
    _, padded_h, padded_w, _ = padded_shape
    x, _ = source_pixels(grid[..., 0], padded_w - 3, padding, align_corners, xp, with_slope=False)
    y, _ = source_pixels(grid[..., 1], padded_h - 3, padding, align_corners, xp, with_slope=False)
    return flat_index(xp.round(x), xp.round(y), padded_shape, xp)


def nearest_forward(
    image: Any, grid: Any, fill: Any, *, padding: str, align_corners: bool
) -> tuple[Any, tuple[Any, ...]]:
    """Sample ``image`` (B, C, H, W) at ``grid`` (B, H_out, W_out, 2); returns (out, residuals)."""
    xp = array_namespace(image, grid)
    padded = padded_channels_last(image, fill, xp)
    rows = _rows(grid, padded.shape, padding, align_corners, xp)
    out = xp.take(_flat(padded, xp), rows, axis=0)
    return _to_channels_first(out, grid.shape, xp), (padded, grid)


def nearest_vjp(
    residuals: tuple[Any, ...],
    cotangent: Any,
    *,
    padding: str,
    align_corners: bool,
    needs: tuple[bool, ...] = (True, True, True),
) -> tuple[Any, Any, Any]:
    """Cotangents of (image, grid, fill); the grid's is zero, unneeded ones ``None``."""
    padded, grid = residuals
    xp = array_namespace(padded, grid, cotangent)
    d_image = d_fill = None
    if needs[0] or needs[2]:
        rows = _rows(grid, padded.shape, padding, align_corners, xp)
        d_image, d_fill = _image_and_fill_cotangents(
            _to_rows(cotangent, xp), rows, padded.shape, padding, xp
        )
    return d_image, xp.zeros_like(grid) if needs[1] else None, d_fill


NEAREST = Op("nearest_sample", nearest_forward, nearest_vjp)
