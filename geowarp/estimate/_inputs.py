"""Point correspondences checked before a fit: shapes raise, degenerate values fail visibly.

Shapes and types are programming errors: they raise `GeowarpValueError` or
`GeowarpTypeError` naming the argument. Values that cannot determine a
transform (too few, mismatched, non-finite, coinciding or collinear points)
are a property of the data: they give a `FailedEstimation` saying why.
Value checks run on the host where the values are known (numpy, eager
frameworks) and are vectorized over the batch; only the first failing item
is diagnosed in detail. Under tracing they are skipped (docs/reliability.md).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._errors import GeowarpTypeError, GeowarpValueError
from .._namespace import array_namespace, backend_name, join, known_values
from .._ops import broadcast_shapes
from ..transforms._tps import coinciding, tolerance
from ._failure import FailedEstimation


class Points(NamedTuple):
    """Checked correspondences, cast to the dtype the fit computes in."""

    xp: Any
    source: Any  # (..., N, 2)
    target: Any  # (..., N, 2)
    weights: Any  # (..., N) or None
    dtype: Any  # the result's dtype: the inputs' floating dtype
    known: tuple[Any, Any, Any] | None  # numpy values of (source, target, weights), or None


def prepare(
    source_points: Any, target_points: Any, weights: Any, label: str, minimum: int
) -> Points | FailedEstimation:
    """Check shapes (raising) and counts (failing); cast to the compute dtype."""
    (source, target, weights), _ = join(
        ("source_points", source_points), ("target_points", target_points), ("weights", weights)
    )
    xp = array_namespace(source, target, weights)
    if backend_name(xp) == "numpy":  # numpy 2 itself: no compatibility wrappers on a small fit
        import numpy as xp
    for name, points in (("source_points", source), ("target_points", target)):
        _check_array(points, name, xp)
        if points.ndim < 2 or points.shape[-1] != 2:
            shape = tuple(points.shape)
            raise GeowarpValueError(f"{name} must have shape (..., N, 2); got {shape}")
    count = target.shape[-2]
    if weights is not None:
        _check_array(weights, "weights", xp)
        if weights.ndim < 1 or weights.shape[-1] != count:
            raise GeowarpValueError(
                f"weights must have shape (..., N) with N = {count} (one per point); "
                f"got {tuple(weights.shape)}"
            )
    if source.shape[-2] != count:
        return FailedEstimation(
            f"{label} failed: source_points has {source.shape[-2]} points but target_points "
            f"has {count}; they must correspond one to one"
        )
    _batch_shape(source, target, weights)  # raises where the batch shapes do not broadcast
    if count < minimum:
        return FailedEstimation(f"{label} failed: it needs at least {minimum} points; got {count}")
    key = (type(source), _dtype_key(source.dtype), _dtype_key(target.dtype))
    dtypes = _DTYPES.get(key)
    if dtypes is None or backend_name(xp) == "jax":  # JAX: x64 may be switched at run time
        dtype = _result_dtype(xp, source.dtype, target.dtype)
        dtypes = _DTYPES[key] = (dtype, compute_dtype(xp, dtype))
    dtype, wide = dtypes
    known = (known_values(source), known_values(target))
    values = None
    if known[0] is not None and known[1] is not None:
        known_weights = None if weights is None else known_values(weights)
        if weights is None or known_weights is not None:
            values = (known[0], known[1], known_weights)
    source, target = xp.astype(source, wide, copy=False), xp.astype(target, wide, copy=False)
    if weights is not None:
        weights = xp.astype(weights, wide, copy=False)
    return Points(xp, source, target, weights, dtype, values)


def _batch_shape(source: Any, target: Any, weights: Any) -> tuple[Any, ...]:
    """The broadcast batch shape of the points (..., N, 2) and weights (..., N)."""
    batch = tuple(source.shape[:-2])
    others = [tuple(target.shape[:-2])] + ([] if weights is None else [tuple(weights.shape[:-1])])
    if all(shape == batch for shape in others):  # the usual case: nothing to broadcast
        return batch
    return broadcast_shapes(batch, *others)


def _check_array(array: Any, name: str, xp: Any) -> None:
    if not hasattr(array, "shape") or not hasattr(array, "dtype"):
        raise GeowarpTypeError(f"{name} must be an array or a sequence; got {type(array).__name__}")
    # asked once per array type and dtype (by name: dtypes of two libraries must not
    # meet in one dict); isdtype is slow next to a small fit
    key = (type(array), _dtype_key(array.dtype))
    real = _REAL.get(key)
    if real is None:
        real = xp.isdtype(array.dtype, ("real floating", "integral"))
        real = _REAL[key] = real and not xp.isdtype(array.dtype, "bool")
    if not real:
        raise GeowarpTypeError(f"{name} must have a real dtype; got {array.dtype}")


def _dtype_key(dtype: Any) -> tuple[type, int]:
    # dtypes of two libraries must not meet in one dict (comparing them can raise), and
    # str(dtype) is slow next to a small fit: the dtype's type and identity instead. The
    # caches hold the dtype objects themselves (see _KEPT), so an id is never reused.
    _KEPT.setdefault(id(dtype), dtype)
    return (type(dtype), id(dtype))


_KEPT: dict[int, Any] = {}


_REAL: dict[tuple[type, Any], bool] = {}


_DTYPES: dict[tuple[type, Any, Any], tuple[Any, Any]] = {}


def _result_dtype(xp: Any, *dtypes: Any) -> Any:
    floating = [d for d in dtypes if xp.isdtype(d, "real floating")]
    return xp.result_type(*floating) if floating else compute_dtype(xp, None)


def compute_dtype(xp: Any, dtype: Any) -> Any:
    """float64 where the library has it (JAX only with x64 enabled), else ``dtype``."""
    # float32 normal equations lose half the digits: the fit is small, float64 is cheap
    if backend_name(xp) == "jax" and xp.asarray(0.0).dtype != xp.float64:
        return dtype if dtype is not None else xp.float32
    return xp.float64


def check_values(
    points: Points, label: str, minimum: int, general_position: bool, *, geometry: bool = True
) -> FailedEstimation | None:
    """Non-finite, too few weighted, coinciding or collinear points, where values are known.

    ``general_position`` (projective fits) also asks non-collinear source
    points and, for exactly 4 points, no 3 of them on one line.
    ``geometry=False`` leaves out the point-by-point geometry (for a fit that
    finds degeneracy itself, and asks again only to say why).
    """
    if points.known is None:
        return None
    source, target, weights = points.known
    if weights is not None and not (np.isfinite(weights).all() and (weights >= 0).all()):
        bad = np.argwhere(~(np.isfinite(weights) & (weights >= 0)))[0]
        raise GeowarpValueError(
            f"weights must be finite and non-negative; weights[{', '.join(map(str, bad))}] "
            f"is {weights[tuple(bad)]!r}"
        )
    batch = _batch_shape(source, target, weights)
    count = target.shape[-2]
    for name, values in (("source_points", source), ("target_points", target)):
        if not np.isfinite(values).all():
            values = _items(values, (*batch, count, 2))
            item, row = np.argwhere(~np.isfinite(values).all(axis=-1))[0]
            return _failed(label, f"{name}[{row}] is not finite", item, batch)
    used = None  # (items, N): the points with a positive weight; None: all of them
    if weights is not None:
        used = np.broadcast_to(weights > 0, (*batch, count)).reshape(-1, count)
        enough = used.sum(axis=-1) >= minimum
        if not enough.all():
            item = int(np.flatnonzero(~enough)[0])
            return _too_few(label, int(used[item].sum()), minimum, item, batch)
    elif count < minimum:  # `prepare` refuses these first, in its own words
        return _too_few(label, count, minimum, 0, batch)
    if not geometry:
        return None
    tol = tolerance(np.result_type(source.dtype, target.dtype))
    source, target = (_items(values, (*batch, count, 2)) for values in (source, target))
    if used is None:
        used = np.ones((len(target), count), dtype=bool)
    return _check_geometry(source, target, used, label, general_position, batch, tol)


def _items(values: Any, shape: tuple[int, ...]) -> Any:
    # (B, N, 2) float64, without copies where the shape and dtype already fit
    if values.shape != shape:
        values = np.broadcast_to(values, shape)
    return values.reshape(-1, *shape[-2:]).astype(np.float64, copy=False)


def _check_geometry(
    source: Any,
    target: Any,
    used: Any,
    label: str,
    general_position: bool,
    batch: Any,
    tol: float,
) -> FailedEstimation | None:
    sets = [("target_points", target)] + ([("source_points", source)] if general_position else [])
    # one vectorized test of every set; the sets are looked at one by one only on failure
    joined = np.concatenate([values for _, values in sets]) if len(sets) > 1 else target
    flat = collinear(joined, np.concatenate([used] * len(sets)), tol)
    for position, (name, values) in enumerate(sets):
        found = flat[position * len(target) : (position + 1) * len(target)]
        if found.any():
            item = int(np.flatnonzero(found)[0])
            needs = "4 points, no 3 on one line" if general_position else "3 points off a line"
            reason = f"all {name} lie on one line (it needs {needs})"
            reason = _with_duplicates(reason, values[item], used[item], name, tol)
            return _failed(label, reason, item, batch)
    if general_position and target.shape[-2] == 4 and used.all():
        for name, values in sets:
            triple = _collinear_triples(values, tol)
            if triple.any():
                item, which = (int(i) for i in np.argwhere(triple)[0])
                rows = [i for i in range(4) if i != 3 - which]
                listed = ", ".join(f"{name}[{i}]" for i in rows)
                reason = f"3 of the 4 {name} are collinear ({listed})"
                reason = _with_duplicates(reason, values[item], used[item], name, tol)
                return _failed(label, reason, item, batch)
    return None


def collinear(points: Any, used: Any, tol: float) -> Any:
    """Per item of ``points`` (B, N, 2): do the ``used`` points (B, N) lie on one line?"""
    # x and y apart: numpy reduces a long last axis quickly, a short one slowly
    x, y = points[..., 0], points[..., 1]
    if used.all():  # the common case: no zero weights, no masking
        x = x - x.mean(axis=-1, keepdims=True)
        y = y - y.mean(axis=-1, keepdims=True)
    else:
        mask = used.astype(points.dtype)
        count = mask.sum(axis=-1, keepdims=True)
        x = mask * (x - (mask * x).sum(axis=-1, keepdims=True) / count)
        y = mask * (y - (mask * y).sum(axis=-1, keepdims=True) / count)
    xx, yy, xy = (x * x).sum(-1), (y * y).sum(-1), (x * y).sum(-1)
    # The scatter's small eigenvalue from its closed form cancels to about eps times the
    # large one, the size of the threshold itself; the spread across the major axis
    # (whose direction is accurate) is measured from the points instead.
    angle = 0.5 * np.arctan2(2 * xy, xx - yy)
    across = np.cos(angle)[..., None] * y - np.sin(angle)[..., None] * x
    largest = 0.5 * (xx + yy) + np.sqrt((0.5 * (xx - yy)) ** 2 + xy**2)
    return (across**2).sum(-1) <= (tol**2) * largest


def _collinear_triples(points: Any, tol: float) -> Any:
    # (B, 4) booleans: is the triple leaving out point 3 - k collinear?
    triples = np.stack([points[:, [j for j in range(4) if j != 3 - k]] for k in range(4)], axis=1)
    return collinear(triples, np.ones(triples.shape[:-1], dtype=bool), tol)


def _with_duplicates(reason: str, item: Any, used: Any, name: str, tol: float) -> str:
    # a coinciding pair is often why the points collapse onto a line: name it
    rows = np.flatnonzero(used)
    values = item[rows]
    spread = float(np.abs(values - values.mean(axis=0)).max())
    pair = coinciding(values, tol * spread)
    if pair is None:
        return reason
    first, second = rows[pair[0]], rows[pair[1]]
    return f"{reason}; {name}[{first}] and {name}[{second}] coincide"


def _too_few(label: str, found: int, minimum: int, item: int, batch: Any) -> FailedEstimation:
    reason = f"only {found} points have a positive weight; it needs {minimum}"
    return _failed(label, reason, item, batch)


def _failed(label: str, reason: str, item: int, batch: Any) -> FailedEstimation:
    where = ""
    if batch:
        where = f" (batch item {tuple(int(i) for i in np.unravel_index(item, batch))})"
    return FailedEstimation(f"{label} failed: {reason}{where}")
