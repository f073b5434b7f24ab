"""One block of a transform's sampling grid, equal to the full grid's values to the last bit.

`geowarp.Transform.sampling_grid` runs the family's ``_grid``: a separable
broadcast for the matrix families, cached spline weights for the thin-plate
spline, `apply` at every pixel centre otherwise. A block computed here runs the
same operations on the block's slice of the output's pixel-centre axes (which
`geowarp.grid.base_axes` builds for the FULL output, so the centres are the full
grid's own values), element by element the same arithmetic; the tests pin every
family's blocks to ``sampling_grid``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autodiff import call
from ..grid import base_axes, grid_from_axes
from ..transforms import ThinPlateSpline, Transform
from ..transforms._matrix import MatrixTransform
from ..transforms._tps_ops import grid_forward, grid_weights

#: Points a block's spline product is padded to a multiple of.
PANEL = 64
#: Points mapped per spline product (a multiple of `PANEL`), bounding a block's temporaries.
STRIP = 1024 * PANEL


def block_grid(
    transform: Transform,
    out_shape: tuple[int, int],
    rows: slice,
    cols: slice,
    align_corners: bool,
) -> Any:
    """The grid of output rows ``rows`` and columns ``cols``: (*batch_shape, h, w, 2).

    Equal to ``transform.sampling_grid(out_shape)[..., rows, cols, :]`` without
    computing the rest of it.
    """
    family_grid = type(transform)._grid
    spline = transform if isinstance(transform, ThinPlateSpline) else None
    if family_grid is not ThinPlateSpline._grid:  # a subclass with its own grid
        spline = None
    # the axes' dtype as each `_grid` takes it
    like = transform._reference if spline is None else spline.target_points
    xs, ys = base_axes(out_shape, align_corners=align_corners, like=like)
    xs, ys = xs[cols], ys[rows]
    if isinstance(transform, MatrixTransform) and family_grid is MatrixTransform._grid:
        return call(transform._grid_op, transform._rows(), xs, ys)
    points = np.reshape(grid_from_axes(xs, ys, np), (ys.shape[0] * xs.shape[0], 2))
    # `Transform._grid` applies the transform at the pixel centres
    mapped = transform.apply(points) if spline is None else _spline_points(spline, points)
    return np.reshape(mapped, (*mapped.shape[:-2], ys.shape[0], xs.shape[0], 2))


def _spline_points(transform: ThinPlateSpline, points: Any) -> Any:
    # ThinPlateSpline._grid through its weight cache's arithmetic (numpy centres always
    # have a content key): weights in float64, kept in the centres' dtype, then W^T @ source
    centres = transform.target_points
    count = points.shape[0]
    # BLAS rounds the columns of a matrix product's ragged edge differently from its
    # full panels: pad the block's points to whole panels, as almost all of the full
    # grid's points are (see `PANEL`)
    padded = -(-count // PANEL) * PANEL
    points = np.concatenate([points, np.broadcast_to(points[-1:], (padded - count, 2))])
    precise = centres.astype(np.float64, copy=False)
    # Every column of the products depends on its own point only, so strips of whole
    # panels give the bits of one product (up to how a multithreaded BLAS splits the
    # columns between its threads, which already varies with a block's size) while the
    # float64 (N, K + 3) basis and (K, N) weights stay small: a 2048 x 2048 block in
    # one product needs ~1.7 GiB, in strips ~0.2 GiB, and is twice as fast.
    strips = []
    for start in range(0, padded, STRIP):
        weights = grid_weights(
            precise,
            points[start : start + STRIP].astype(np.float64, copy=False),
            regularization=transform.regularization,
        ).astype(centres.dtype, copy=False)
        strips.append(grid_forward(weights, transform.source_points)[0])
    mapped = strips[0] if len(strips) == 1 else np.concatenate(strips, axis=-2)
    return mapped[..., :count, :]
