"""numba's loops of numpy's sampler kernels: imported only by `geowarp.samplers._compiled`.

Each function computes output rows ``[first, stop)`` (a row is one output
line of one batch item, ``item * out_h + line``) into ``out`` (B, C, H_out *
W_out), from ``flat``, the kernels' planar padded copy, flattened. Per row it
works in passes over row-long scratch arrays: the points' pixels; their
corner indices and fractions; the gathers; the blend. Kept apart, the
arithmetic passes vectorize (fused into one loop, a 1024x1024 warp ran 1.4x
slower). The arithmetic is `geowarp.samplers._numpy`'s, operation for
operation in the points' dtype, and numba does not contract a multiply and an
add into one rounding, so the values are the same bit for bit.

``settings`` (int64): padded width, plane size, channels, align_corners,
nearest. ``constants`` (the points' dtype): 1, 0.5, width, height, width - 1,
height - 1, the clamp's low and high along x and y, `COORDINATE_LIMIT`.
``offsets`` (B,) int64: each item's flat offset of its pixel (0, 0).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

#: The helpers, inlined into the loops.
_helper = numba.njit(inline="always", nogil=True, cache=True, boundscheck=False)


def _loop(*arguments: str) -> Any:
    """numba's ``njit`` for the loops, compiled for float32 and float64 and for those
    only: ``"in1"`` is a read-only array of that dtype with 1 dimension (writable
    arrays pass too), ``"strided3"`` a read-only one of any strides, ``"out3"`` a
    writable C-contiguous one, ``"ints1"`` int64, ``"int"`` an int64."""
    signatures = []
    for dtype in (numba.float32, numba.float64):
        types: list[Any] = []
        for kind in arguments:
            ndim = int(kind[-1]) if kind[-1].isdigit() else 0
            if kind == "int":
                types.append(numba.int64)
            elif kind.startswith("ints"):
                types.append(numba.types.Array(numba.int64, ndim, "C", readonly=True))
            elif kind.startswith("strided"):
                types.append(numba.types.Array(dtype, ndim, "A", readonly=True))
            else:
                types.append(numba.types.Array(dtype, ndim, "C", readonly=kind.startswith("in")))
        signatures.append(numba.void(*types))
    return numba.njit(signatures, nogil=True, cache=True, boundscheck=False, error_model="numpy")


@_helper
def _pixel(coord: Any, axis: int, align: int, constants: Any) -> Any:
    """`_Layout.pixels` of one coordinate along x (``axis`` 0) or y (1), NaN read at -1."""
    one, half, size, span = constants[0], constants[1], constants[2 + axis], constants[4 + axis]
    low, high, limit = constants[6 + 2 * axis], constants[7 + 2 * axis], constants[10]
    if coord != coord:
        return -one
    if align:
        if span == 0:  # a single pixel: inf * 0 would be NaN, so clamp first
            coord = min(max(coord, -limit), limit)
        pixel = (coord + one) * half * span
    else:
        pixel = ((coord + one) * size - one) * half
    return min(max(pixel, low), high)


@_helper
def _corners(px: Any, py: Any, settings: Any, offset: int, index: Any, fx: Any, fy: Any) -> None:
    """Pixels ``px``, ``py`` (one row) to corner indices and fractions (nearest: the pixel)."""
    padded_w, nearest = settings[0], settings[4]
    for c in range(px.shape[0]):
        if nearest:
            x0, y0 = np.rint(px[c]), np.rint(py[c])  # half-way ties to even, as np.round
        else:
            x0, y0 = np.floor(px[c]), np.floor(py[c])
            fx[c] = px[c] - x0
            fy[c] = py[c] - y0
        index[c] = offset + np.int64(y0) * padded_w + np.int64(x0)


@_helper
def _read(
    flat: Any,
    index: Any,
    fx: Any,
    fy: Any,
    settings: Any,
    out: Any,
    item: int,
    at: int,
    scratch: Any,
) -> None:
    """Every channel of one row's points into ``out[item, :, at:]``."""
    padded_w, plane, channels, nearest = settings[0], settings[1], settings[2], settings[4]
    count = index.shape[0]
    tl, tr, bl, br = scratch[0], scratch[1], scratch[2], scratch[3]
    for channel in range(channels):
        start = channel * plane
        row = out[item, channel, at : at + count]
        if nearest:
            for c in range(count):
                row[c] = flat[start + index[c]]
            continue
        for c in range(count):
            i = start + index[c]
            tl[c] = flat[i]
            tr[c] = flat[i + 1]
            bl[c] = flat[i + padded_w]
            br[c] = flat[i + padded_w + 1]
        for c in range(count):  # two lerps along x, one along y, as the portable code
            top = (tr[c] - tl[c]) * fx[c] + tl[c]
            bottom = (br[c] - bl[c]) * fx[c] + bl[c]
            row[c] = top + (bottom - top) * fy[c]


@_helper
def _sample_row(
    flat: Any, rows: Any, index: Any, settings: Any, offset: int, out: Any, item: int, at: int
) -> None:
    """One row's points, their pixels in ``rows[0]`` (x) and ``rows[1]`` (y), into
    ``out[item, :, at:]``; ``rows[2:]`` and ``index`` are the row's scratch."""
    px, py, fx, fy, scratch = rows[0], rows[1], rows[2], rows[3], rows[4:]
    _corners(px, py, settings, offset, index, fx, fy)
    _read(flat, index, fx, fy, settings, out, item, at, scratch)


@_loop("in1", "in3", "in3", "in1", "ints1", "ints1", "in1", "out3", "int", "int")
def matrix_rows(
    flat: Any,
    along_x: Any,
    along_y: Any,
    signs: Any,
    offsets: Any,
    settings: Any,
    constants: Any,
    out: Any,
    first: int,
    stop: int,
) -> None:
    """Rows of a warp by a matrix map: `warp_matrix`'s grid, point by point.

    ``along_x`` (B or 1, R, W_out) and ``along_y`` (B or 1, R, H_out) are the
    map's products per output column and line (R = 2 affine, 3 projective);
    ``signs`` (B or 1,) the sign of each homography's centre.
    """
    out_h, out_w = along_y.shape[2], along_x.shape[2]
    align = settings[3]
    projective = along_x.shape[1] == 3
    rows, index = np.empty((8, out_w), constants.dtype), np.empty(out_w, np.int64)
    px, py = rows[0], rows[1]
    nan = constants.dtype.type(np.nan)
    for job in range(first, stop):
        item, line = job // out_h, job % out_h
        shared = 0 if along_x.shape[0] == 1 else item
        y_x, y_y = along_y[shared, 0, line], along_y[shared, 1, line]
        for c in range(out_w):
            x = y_x + along_x[shared, 0, c]
            y = y_y + along_x[shared, 1, c]
            if projective:
                w = along_y[shared, 2, line] + along_x[shared, 2, c]
                if w * signs[shared] <= 0:  # behind the camera: NaN, read as padding
                    w = nan
                x /= w
                y /= w
            px[c] = _pixel(x, 0, align, constants)
            py[c] = _pixel(y, 1, align, constants)
        _sample_row(flat, rows, index, settings, offsets[item], out, item, line * out_w)


@_loop("in1", "strided3", "strided3", "ints1", "ints1", "in1", "out3", "int", "int")
def grid_rows(
    flat: Any,
    grid_x: Any,
    grid_y: Any,
    offsets: Any,
    settings: Any,
    constants: Any,
    out: Any,
    first: int,
    stop: int,
) -> None:
    """Rows of `geowarp.sample` at the points ``grid_x``, ``grid_y`` (B, H_out, W_out) (the
    grid's planes, views of any strides)."""
    out_h, out_w = grid_x.shape[1], grid_x.shape[2]
    align = settings[3]
    rows, index = np.empty((8, out_w), constants.dtype), np.empty(out_w, np.int64)
    px, py = rows[0], rows[1]
    for job in range(first, stop):
        item, line = job // out_h, job % out_h
        for c in range(out_w):
            px[c] = _pixel(grid_x[item, line, c], 0, align, constants)
            py[c] = _pixel(grid_y[item, line, c], 1, align, constants)
        _sample_row(flat, rows, index, settings, offsets[item], out, item, line * out_w)
