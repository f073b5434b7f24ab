"""NumPy's `geowarp.backends.Backend`, built in: the core's numpy fast paths, found by name.

NumPy has no autodiff to wire; what it gets are the same kinds of native
paths a framework's backend brings, written with numpy and pinned to the
portable code by tests:

* ``samplers``: `geowarp.samplers._numpy`'s kernels, identical to the
  portable samplers;
* ``warp``: an `Affine` or `Projective` warp whose grid is built chunk by
  chunk (`geowarp.samplers._numpy.warp_matrix`), never whole;
* ``ops``: a scatter-add by ``bincount``; a solve that gives NaN for the
  singular items only; content keys by value; and the thin-plate spline's
  sums in a fixed order per point (`geowarp.transforms._tps_numpy`), so a
  point's value never depends on the points that share its call (what
  `geowarp.dask`'s blocks need to equal the whole grid).

`geowarp.backends.get` loads it the first time it is asked for "numpy", as
it loads the frameworks' backends from their entry points. Replacing it
(``backends.register(dataclasses.replace(backends.get("numpy"), ...))``)
changes numpy's fast paths like any backend's; `geowarp.backends.unregister`
brings the built-in one back on the next use.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from .backends import Backend
from .grid import base_axes
from .samplers._numpy import KERNELS, loops_serve, warp_matrix
from .transforms import Affine, Projective, Transform, _tps_numpy

#: Fewest output points per image for the whole-warp fast path on numpy's chunks: below,
#: many images share a chunk and building their grid rows per chunk measured slower than
#: one grid. numba's compiled loops, where they serve, take every size.
MIN_POINTS = 2**14


def warp(image: Any, transform: Transform, out_shape: tuple[int, int], **settings: Any) -> Any:
    """The whole-warp fast path (`geowarp.backends.WarpFastPath`), or None where it does not apply.

    A plain `Affine` or `Projective` of the image's floating dtype on a numpy
    image of a matching batch: `geowarp.samplers._numpy.warp_matrix` samples
    it with the grid built per chunk, identical to sampling the whole grid.
    """
    fill = settings["fill_value"]
    if not (settings["native"] and isinstance(transform, Affine | Projective)):
        return None
    if type(transform) not in (Affine, Projective):  # a subclass may map points its own way
        return None
    if not isinstance(image, np.ndarray) or type(fill) not in (int, float):
        return None
    rows = transform._rows()
    if image.dtype not in (np.float32, np.float64) or rows.dtype != image.dtype:
        return None
    if 0 in image.shape[2:] or (rows.ndim == 3 and rows.shape[0] != image.shape[0]):
        return None
    small = out_shape[0] * out_shape[1] < MIN_POINTS
    values = image.shape[0] * image.shape[1] * out_shape[0] * out_shape[1]
    if small and not loops_serve(settings["padding"], image.dtype, values):
        return None  # small outputs: numpy's grid + sampler measured faster than its chunks
    xs, ys = base_axes(out_shape, align_corners=settings["align_corners"], like=rows)
    value = np.asarray(fill, dtype=image.dtype)
    return warp_matrix(
        image,
        rows,
        xs,
        ys,
        np.broadcast_to(value, (image.shape[1],)),
        mode=settings["mode"],
        padding=settings["padding"],
        align_corners=settings["align_corners"],
    )


def scatter_add_rows(values: Any, indices: Any, num_rows: int) -> Any:
    """`geowarp._ops.scatter_add_rows`: ``bincount`` per channel (several times ``np.add.at``'s
    speed)."""
    columns = [
        np.bincount(indices, weights=values[:, c], minlength=num_rows)
        for c in range(values.shape[1])
    ]
    shape = (num_rows, values.shape[1])
    out = np.stack(columns, axis=1) if columns else np.zeros(shape)
    return out.astype(values.dtype, copy=False)


def solve(a: Any, b: Any) -> Any:
    """``a^-1 @ b``, batched; NaN for the singular items only, never an exception."""
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        items_a = np.broadcast_to(a, (*batch, *a.shape[-2:])).reshape(-1, *a.shape[-2:])
        items_b = np.broadcast_to(b, (*batch, *b.shape[-2:])).reshape(-1, *b.shape[-2:])
        out = np.full(items_b.shape, np.nan, dtype=np.result_type(a, b))
        for index, (item_a, item_b) in enumerate(zip(items_a, items_b, strict=True)):
            with contextlib.suppress(np.linalg.LinAlgError):
                out[index] = np.linalg.solve(item_a, item_b)
        return out.reshape(*batch, *b.shape[-2:])


def content_key(array: Any) -> tuple[Any, ...]:
    """`geowarp._ops.content_key`: host memory, keyed by its values."""
    return ("value", array.dtype.str, array.shape, array.tobytes())


BACKEND = Backend(
    "numpy",
    samplers=KERNELS,
    warp=warp,
    ops={
        "scatter_add_rows": scatter_add_rows,
        "solve": solve,
        "content_key": content_key,
        "spline_points": _tps_numpy.spline_points,
        "spline_weights": _tps_numpy.spline_weights,
        "spline_weighted_sum": _tps_numpy.weighted_sum,
    },
)
"""Loaded the first time geowarp asks for numpy's backend."""
