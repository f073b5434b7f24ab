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
