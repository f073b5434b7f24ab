"""Bilinear sampling and its vector-Jacobian product (the STN paper's gradients)."""

from __future__ import annotations

from typing import Any

from .._namespace import array_namespace
from .._ops import scatter_add_rows
from ..autodiff import Op
from ._coordinates import (
    fill_cotangent,
    flat_index,
    padded_channels_last,
    padded_interior,
    source_pixels,
)


def _neighbourhood(
    grid: Any,
    padded_shape: tuple[int, ...],
    padding: str,
    align_corners: bool,
    xp: Any,
    *,
    with_slope: bool,
) -> tuple[Any, list[int], Any, Any, Any, Any]:
    """The top-left neighbours' rows, the four neighbours' offsets from them, the
    fractional parts ``(x - x0, y - y0)`` as (N, 1) and the slopes of (x, y)."""
    _, padded_h, padded_w, _ = padded_shape
    x, slope_x = source_pixels(
        grid[..., 0], padded_w - 3, padding, align_corners, xp, with_slope=with_slope
    )
    y, slope_y = source_pixels(
        grid[..., 1], padded_h - 3, padding, align_corners, xp, with_slope=with_slope
    )
    x0, y0 = xp.floor(x), xp.floor(y)
    top_left = flat_index(x0, y0, padded_shape, xp)
    offsets = [0, 1, padded_w, padded_w + 1]
    fraction_x = xp.reshape(x - x0, (-1, 1))
    fraction_y = xp.reshape(y - y0, (-1, 1))
    return top_left, offsets, fraction_x, fraction_y, slope_x, slope_y


def _gather(flat: Any, top_left: Any, offsets: list[int], xp: Any) -> list[Any]:
    # Row r + offset of ``flat`` is row r of ``flat[offset:]``, a view: no index arrays
    # for the other three neighbours.
    if flat.shape[0] == 0:  # empty batch: nothing to read, and no view to slice
        return [xp.take(flat, top_left, axis=0)] * len(offsets)
    return [xp.take(flat[offset:, :], top_left, axis=0) for offset in offsets]


def _to_channels_first(flat: Any, grid_shape: tuple[int, ...], xp: Any) -> Any:
    batch, out_h, out_w, _ = grid_shape
    # explicit sizes throughout: -1 is ambiguous when a dimension is empty
    out = xp.reshape(flat, (batch, out_h, out_w, flat.shape[1]))
    return xp.permute_dims(out, (0, 3, 1, 2))


def _to_rows(array: Any, xp: Any) -> Any:
    """(B, C, H, W) -> (B * H * W, C) rows, channels last."""
    batch, channels, height, width = array.shape
    return xp.reshape(xp.permute_dims(array, (0, 2, 3, 1)), (batch * height * width, channels))


def _flat(padded: Any, xp: Any) -> Any:
    batch, height, width, channels = padded.shape
    return xp.reshape(padded, (batch * height * width, channels))


def bilinear_forward(
    image: Any, grid: Any, fill: Any, *, padding: str, align_corners: bool
) -> tuple[Any, tuple[Any, ...]]:
    """Sample ``image`` (B, C, H, W) at ``grid`` (B, H_out, W_out, 2); returns (out, residuals)."""
    xp = array_namespace(image, grid)
    padded = padded_channels_last(image, fill, xp)
    top_left, offsets, fraction_x, fraction_y, _, _ = _neighbourhood(
        grid, padded.shape, padding, align_corners, xp, with_slope=False
    )
    v00, v01, v10, v11 = _gather(_flat(padded, xp), top_left, offsets, xp)
    # two lerps along x, one along y: fewer passes than four weights and products
    top = v00 + fraction_x * (v01 - v00)
    bottom = v10 + fraction_x * (v11 - v10)
    out = top + fraction_y * (bottom - top)
    return _to_channels_first(out, grid.shape, xp), (padded, grid)


def bilinear_vjp(
    residuals: tuple[Any, ...],
    cotangent: Any,
    *,
    padding: str,
    align_corners: bool,
    needs: tuple[bool, ...] = (True, True, True),
) -> tuple[Any, Any, Any]:
    """Cotangents of (image, grid, fill) given the cotangent (B, C, H_out, W_out) of the output.

    Entries not in ``needs`` are ``None`` and cost nothing.
    """
    padded, grid = residuals
    xp = array_namespace(padded, grid, cotangent)
    top_left, offsets, wx1, wy1, slope_x, slope_y = _neighbourhood(
        grid, padded.shape, padding, align_corners, xp, with_slope=True
    )
    wx0, wy0 = 1 - wx1, 1 - wy1
    weights = [wy0 * wx0, wy0 * wx1, wy1 * wx0, wy1 * wx1]
    cot = _to_rows(cotangent, xp)
    d_image = d_grid = d_fill = None
    if needs[0] or needs[2]:
        # dL/dU: each output spreads its cotangent over its four neighbours (duplicates add up).
        values = xp.concat([w * cot for w in weights], axis=0)
        rows = xp.concat([top_left + offset for offset in offsets], axis=0)
        d_image, d_fill = _image_and_fill_cotangents(values, rows, padded.shape, padding, xp)
    if needs[1]:
        # dL/d(x, y): the derivative of the bilinear weights times the neighbour values.
        v00, v01, v10, v11 = _gather(_flat(padded, xp), top_left, offsets, xp)
        d_x = xp.sum(cot * (wy0 * (v01 - v00) + wy1 * (v11 - v10)), axis=1)
        d_y = xp.sum(cot * (wx0 * (v10 - v00) + wx1 * (v11 - v01)), axis=1)
        d_grid = xp.stack(
            [xp.reshape(d_x, slope_x.shape) * slope_x, xp.reshape(d_y, slope_y.shape) * slope_y],
            axis=-1,
        )
    return d_image, d_grid, d_fill


def _image_and_fill_cotangents(
    values: Any, rows: Any, padded_shape: tuple[int, ...], padding: str, xp: Any
) -> tuple[Any, Any]:
    """Scatter-add ``values`` into the padded copy; split into image and ring (fill) parts."""
    num_rows = padded_shape[0] * padded_shape[1] * padded_shape[2]
    d_padded = xp.reshape(scatter_add_rows(values, rows, num_rows, xp), padded_shape)
    d_image = padded_interior(d_padded)
    total = xp.sum(d_padded, axis=(0, 1, 2))
    return d_image, fill_cotangent(total, xp.sum(d_image, axis=(0, 2, 3)), padding, xp)


BILINEAR = Op("bilinear_sample", bilinear_forward, bilinear_vjp)
