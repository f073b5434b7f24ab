"""NumPy's thin-plate spline sums: each point's value one fixed sequence of operations.

The spline's maps are sums over the basis ``[U(|p - c_0|^2), ..., U(|p -
c_{K-1}|^2), 1, x, y]`` of a point ``p``: the point map (`spline_points`),
the interpolation weights of a grid (`spline_weights`) and the grid read
through them (`weighted_sum`). As matrix products they would be BLAS's to
round, and BLAS picks its kernels, its blocking and its threads by the
shapes, so a point's value would depend on how many points share the call.
Here each sum is taken term by term in basis order, every product rounded
and then added, with elementwise ufuncs over tiles of points: a point's value
depends on the point, the centres and the coefficients only, never on the
other points, the tile size or the array's length. A chunk of a grid
(`geowarp.dask`'s blocks) is then the whole grid's values to the last bit.

Tiles of points and blocks of rows keep each ufunc call's operands within
`TILE_VALUES` values (a core's L2 cache) and its rows at least `MIN_TILE`
points long (a broadcast row costs numpy about as much as a thousand values);
no (N, K) matrix is ever built for a point map.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Values in one call's output block (or a tile's kernel values): 1 MiB of float64.
TILE_VALUES = 2**17
#: Fewest points in a tile.
MIN_TILE = 2**12


def kernel_values(centres: Any, xs: Any, ys: Any) -> Any:
    """``U(|p - c_k|^2)`` of points ``(xs, ys)`` (..., T) and ``centres`` (..., K, 2): (..., K, T).

    The portable kernel's arithmetic (``r2 log max(r2, tiny)``), with the
    squared distance taken from the differences: exact 0 at a centre.
    """
    dx = xs[..., None, :] - centres[..., :, 0:1]
    dy = ys[..., None, :] - centres[..., :, 1:2]
    np.multiply(dx, dx, out=dx)
    np.multiply(dy, dy, out=dy)
    r2 = np.add(dx, dy, out=dx)
    logs = np.maximum(r2, np.finfo(r2.dtype).smallest_normal, out=dy)
    np.log(logs, out=logs)  # contiguous in and out: the same log routine for every value
    return np.multiply(r2, logs, out=r2)


def spline_points(coefficients: Any, centres: Any, points: Any) -> Any:
    """The spline's map of ``points`` (..., N, 2): (..., N, 2).

    ``coefficients`` (..., K + 3, 2) multiply the basis columns of kernel
    centres ``centres`` (..., K, 2); batch dimensions broadcast.
    """
    count = centres.shape[-2]
    batch = np.broadcast_shapes(coefficients.shape[:-2], centres.shape[:-2], points.shape[:-2])
    dtype = np.result_type(coefficients, centres, points)
    planes = np.empty((*batch, 2, points.shape[-2]), dtype=dtype)  # x and y rows, (..., 2, N)
    factors = coefficients[..., None]  # (..., K + 3, 2, 1): row j scales basis column j
    for start, stop in _tiles(points.shape[-2], count * _size(batch)):
        xs, ys = points[..., start:stop, 0], points[..., start:stop, 1]
        kernel = kernel_values(centres, xs, ys)
        _sum_into(planes[..., start:stop], factors, _basis_terms(kernel, xs, ys))
    return np.swapaxes(planes, -1, -2)


def spline_weights(columns: Any, centres: Any, points: Any) -> Any:
    """Interpolation weights ``W`` (..., K, N) of ``points`` (..., N, 2).

    ``columns`` (..., K + 3, K) are the columns of the system's inverse that
    meet the source points: ``W[:, n]`` is their sum weighted by point ``n``'s
    basis. C-contiguous, as `geowarp.transforms._tps_ops.grid_weights` stores them.
    """
    count = centres.shape[-2]
    batch = np.broadcast_shapes(columns.shape[:-2], centres.shape[:-2], points.shape[:-2])
    dtype = np.result_type(columns, centres, points)
    weights = np.empty((*batch, count, points.shape[-2]), dtype=dtype)
    factors = columns[..., None]  # (..., K + 3, K, 1)
    for start, stop in _tiles(points.shape[-2], count * _size(batch)):
        xs, ys = points[..., start:stop, 0], points[..., start:stop, 1]
        kernel = kernel_values(centres, xs, ys)
        _sum_into(weights[..., start:stop], factors, _basis_terms(kernel, xs, ys))
    return weights


def weighted_sum(weights: Any, source: Any) -> Any:
    """``W^T @ source``: weights (..., K, N) and source points (..., K, 2) to (..., N, 2)."""
    count = weights.shape[-2]
    batch = np.broadcast_shapes(weights.shape[:-2], source.shape[:-2])
    planes = np.empty((*batch, 2, weights.shape[-1]), dtype=np.result_type(weights, source))
    factors = source[..., None]  # (..., K, 2, 1)
    for start, stop in _tiles(weights.shape[-1], 2 * _size(batch)):
        tile = weights[..., start:stop]
        _sum_into(planes[..., start:stop], factors, [tile[..., k : k + 1, :] for k in range(count)])
    return np.swapaxes(planes, -1, -2)


def _basis_terms(kernel: Any, xs: Any, ys: Any) -> list[Any]:
    # the basis columns U_0 .. U_{K-1}, 1 (None: the factor itself), x, y, each (..., 1, T)
    kernels = [kernel[..., k : k + 1, :] for k in range(kernel.shape[-2])]
    return [*kernels, None, xs[..., None, :], ys[..., None, :]]


def _sum_into(out: Any, factors: Any, terms: list[Any]) -> None:
    """``out = sum_j factors[..., j, :, :] * terms[j]``, j ascending, into ``out`` (..., R, T).

    Each product is rounded, then added to the running sum: the IEEE
    operations of a plain loop, whatever the shapes. A term None is the
    constant 1 (its factor, exactly). Rows go in blocks that stay in cache.
    """
    rows = out.shape[-2]
    block = max(1, TILE_VALUES // max(1, out.shape[-1] * _size(out.shape[:-2])))
    for first in range(0, rows, block):
        part = out[..., first : first + block, :]
        scales = factors[..., first : first + block, :]
        scratch = np.empty_like(part)
        for j, term in enumerate(terms):
            target = part if j == 0 else scratch
            if term is None:
                np.copyto(target, scales[..., j, :, :])
            else:
                np.multiply(scales[..., j, :, :], term, out=target)
            if j:
                np.add(part, scratch, out=part)


def _tiles(count: int, values_per_point: int) -> list[tuple[int, int]]:
    # tiles of points whose temporaries hold about TILE_VALUES values, and at least MIN_TILE
    step = max(MIN_TILE, TILE_VALUES // max(values_per_point, 1))
    return [(start, min(start + step, count)) for start in range(0, count, step)]


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))
