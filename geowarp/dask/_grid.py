"""One block of a transform's sampling grid, equal to the full grid's values to the last bit.

`geowarp.Transform.sampling_grid` runs the family's ``_grid``: a separable
broadcast for the matrix families, spline weights (or the spline's map, for a
grid whose weights are too large to keep) for the thin-plate spline, `apply`
at every pixel centre otherwise. A block computed here runs the same
operations on the block's slice of the output's pixel-centre axes (which
`geowarp.grid.base_axes` builds for the FULL output, so the centres are the
full grid's own values), element by element the same arithmetic; the tests
pin every family's blocks to ``sampling_grid``.

A spline's sums over its landmarks are taken in a fixed order per point on
numpy (`geowarp.transforms._tps_numpy`), so a block's points get the full
grid's bits. Its small linear system is solved once, by `solve_spline`, where
the graph is built (as `geowarp.warp` solves it, in the same process): a
worker whose LAPACK runs with other threads still reads the same solution.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..autodiff import call
from ..grid import base_axes, grid_from_axes
from ..transforms import ThinPlateSpline, Transform
from ..transforms._matrix import MatrixTransform
from ..transforms._tps_ops import (
    grid_forward,
    grid_weights,
    map_points,
    maps_points,
    spline_coefficients,
    weight_columns,
)

#: Points per spline call within a block, bounding its temporaries (the weights: K per point).
STRIP = 2**16


class SplineSolution(NamedTuple):
    """A spline grid's linear system solved, in float64, for all of its blocks."""

    maps_points: bool
    """Whether the grid maps its points (`geowarp.transforms._tps_ops.maps_points`)."""
    solution: Any
    """The coefficients (..., K + 3, 2) if so, else the weight columns (..., K + 3, K)."""


def solve_spline(transform: Transform, out_shape: tuple[int, int]) -> SplineSolution | None:
    """What ``transform.sampling_grid(out_shape)`` solves, if it is a spline's grid; else None.

    The same calls with the same arrays as `ThinPlateSpline`'s grid makes
    (through the weight cache, or `geowarp.transforms._tps_ops.map_points`).
    """
    spline = _spline(transform)
    return None if spline is None else _solve(spline, out_shape)


def _solve(spline: ThinPlateSpline, out_shape: tuple[int, int]) -> SplineSolution:
    centres = spline.target_points
    precise = centres.astype(np.float64, copy=False)
    regularization = spline.regularization
    if maps_points(centres, out_shape[0] * out_shape[1]):
        source = spline.source_points.astype(np.float64, copy=False)
        return SplineSolution(True, spline_coefficients(precise, source, regularization))
    return SplineSolution(False, weight_columns(precise, regularization))


def block_grid(
    transform: Transform,
    out_shape: tuple[int, int],
    rows: slice,
    cols: slice,
    align_corners: bool,
    solved: SplineSolution | None = None,
) -> Any:
    """The grid of output rows ``rows`` and columns ``cols``: (*batch_shape, h, w, 2).

    Equal to ``transform.sampling_grid(out_shape)[..., rows, cols, :]`` without
    computing the rest of it. ``solved`` is `solve_spline`'s answer for a
    spline (solved here when omitted).
    """
    family_grid = type(transform)._grid
    spline = _spline(transform)
    # the axes' dtype as each `_grid` takes it
    like = transform._reference if spline is None else spline.target_points
    xs, ys = base_axes(out_shape, align_corners=align_corners, like=like)
    xs, ys = xs[cols], ys[rows]
    if isinstance(transform, MatrixTransform) and family_grid is MatrixTransform._grid:
        return call(transform._grid_op, transform._rows(), xs, ys)
    points = np.reshape(grid_from_axes(xs, ys, np), (ys.shape[0] * xs.shape[0], 2))
    if spline is None:  # `Transform._grid` applies the transform at the pixel centres
        mapped = transform.apply(points)
    else:
        solved = _solve(spline, out_shape) if solved is None else solved
        mapped = _spline_points(spline, points, solved)
    return np.reshape(mapped, (*mapped.shape[:-2], ys.shape[0], xs.shape[0], 2))


def _spline(transform: Transform) -> ThinPlateSpline | None:
    # a spline whose grid is ThinPlateSpline's own (a subclass may map points its own way)
    if isinstance(transform, ThinPlateSpline) and type(transform)._grid is ThinPlateSpline._grid:
        return transform
    return None


def _spline_points(transform: ThinPlateSpline, points: Any, solved: SplineSolution) -> Any:
    # ThinPlateSpline._grid's arithmetic on the block's points, strip by strip: every
    # point's value is its own fixed sum, whichever points share a call
    centres, source = transform.target_points, transform.source_points
    precise = centres.astype(np.float64, copy=False)
    regularization = transform.regularization
    strips = []
    for start in range(0, points.shape[0], STRIP):
        strip = points[start : start + STRIP].astype(np.float64, copy=False)
        if solved.maps_points:
            mapped = map_points(
                centres, source, strip, regularization=regularization, coefficients=solved.solution
            )
        else:  # the weight cache's arithmetic: weights in float64, kept in the centres' dtype
            weights = grid_weights(
                precise, strip, regularization=regularization, columns=solved.solution
            )
            mapped = grid_forward(weights.astype(centres.dtype, copy=False), source)[0]
        strips.append(mapped)
    return strips[0] if len(strips) == 1 else np.concatenate(strips, axis=-2)


#: Output pixels between the points of a block's lattice where a spline's range is bounded.
LATTICE_STEP = 8
#: The largest ``|d/dr (r^2 log r^2)|`` for r below ``SLOPE_TURN``, reached there.
SLOPE_TURN, SLOPE_LOW = float(np.exp(-1.5)), float(4 * np.exp(-1.5))


def spline_range(
    transform: Transform,
    out_shape: tuple[int, int],
    rows: slice,
    cols: slice,
    align_corners: bool,
    solved: SplineSolution,
) -> Any:
    """Bounds (2, 2) ``[[x_low, y_low], [x_high, y_high]]`` of a spline block's grid values, or
    None where they are not finite.

    The spline is mapped on a lattice of the block's pixel centres (every
    `LATTICE_STEP`-th row and column, and the last), and each of its two
    outputs moves by at most ``L * d`` between a lattice point and any point
    of its cell: ``d`` the largest distance to a lattice point, ``L`` a bound on
    the output's gradient over the block, from the coefficients ``[w; a]``:
    ``|(a_x, a_y)| + sum_k |w_k| max |h(|p - c_k|)|`` with
    ``h(r) = d/dr (r^2 log r^2) = 2 r (2 log r + 1)``, whose size on an
    interval of r is largest at its ends or at ``SLOPE_TURN``. The bounds are
    widened by a relative 1e-5 for the grid's rounding; a block's points all
    lie inside them, so the block can find the input it reads from a few
    thousand points instead of computing its whole grid twice.
    """
    spline = _spline(transform)
    assert spline is not None
    lattice_rows = _lattice(rows)
    lattice_cols = _lattice(cols)
    grid = block_grid(spline, out_shape, lattice_rows, lattice_cols, align_corners, solved)
    values = np.reshape(np.asarray(grid, dtype=np.float64), (-1, 2))
    xs, ys = base_axes(out_shape, align_corners=align_corners, like=spline.target_points)
    xs = np.asarray(xs, dtype=np.float64)[cols]
    ys = np.asarray(ys, dtype=np.float64)[rows]
    reach = np.hypot(
        _half_gap(xs, lattice_cols - cols.start), _half_gap(ys, lattice_rows - rows.start)
    )
    slope = _slope_bound(spline, solved, (xs.min(), xs.max()), (ys.min(), ys.max()))
    low = values.min(axis=0) - slope * reach
    high = values.max(axis=0) + slope * reach
    bounds = np.stack([low, high])
    bounds += np.array([-1.0, 1.0])[:, None] * 1e-5 * (1.0 + np.abs(bounds))
    return bounds if np.isfinite(bounds).all() else None


def _lattice(span: slice) -> Any:
    """Every `LATTICE_STEP`-th index of ``span`` and its last."""
    indices = np.arange(span.start, span.stop, LATTICE_STEP)
    return indices if indices[-1] == span.stop - 1 else np.append(indices, span.stop - 1)


def _half_gap(axis: Any, lattice: Any) -> float:
    """How far a point of ``axis`` can be from the nearest of its ``lattice`` points: half
    the largest gap between consecutive ones with points between them."""
    gaps = np.abs(np.diff(axis[lattice]))[np.diff(lattice) > 1]
    return float(np.max(gaps, initial=0.0)) / 2


def _slope_bound(
    spline: ThinPlateSpline, solved: SplineSolution, x_range: Any, y_range: Any
) -> Any:
    """A bound (2,) on the gradient's size of each output over the box of ``x_range``,
    ``y_range``, taken over the batch."""
    centres = np.asarray(spline.target_points, dtype=np.float64)  # (..., K, 2)
    if solved.maps_points:
        coefficients = np.asarray(solved.solution, dtype=np.float64)
    else:
        source = np.asarray(spline.source_points, dtype=np.float64)
        coefficients = np.asarray(solved.solution, dtype=np.float64) @ source
    count = centres.shape[-2]
    weights, linear = coefficients[..., :count, :], coefficients[..., count + 1 :, :]
    # each centre's nearest and farthest distance to the box
    box_low, box_high = np.array([x_range[0], y_range[0]]), np.array([x_range[1], y_range[1]])
    outside = np.maximum(box_low - centres, 0) + np.maximum(centres - box_high, 0)
    nearest = np.hypot(outside[..., 0], outside[..., 1])
    far = np.maximum(np.abs(centres - box_low), np.abs(centres - box_high))
    farthest = np.hypot(far[..., 0], far[..., 1])
    ends = np.maximum(np.abs(_kernel_slope_r(nearest)), np.abs(_kernel_slope_r(farthest)))
    turns = (nearest <= SLOPE_TURN) & (farthest >= SLOPE_TURN)
    size = np.where(turns, np.maximum(ends, SLOPE_LOW), ends)  # (..., K)
    bound = np.hypot(linear[..., 0, :], linear[..., 1, :])  # (..., 2): |(a_x, a_y)| per output
    bound = bound + np.sum(np.abs(weights) * size[..., None], axis=-2)
    return np.max(np.reshape(bound, (-1, 2)), axis=0)


def _kernel_slope_r(r: Any) -> Any:
    """``h(r) = 2 r (2 log r + 1)``, 0 at r = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > 0, 2 * r * (2 * np.log(np.where(r > 0, r, 1.0)) + 1), 0.0)
