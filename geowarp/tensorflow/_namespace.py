"""The array-API subset geowarp's core uses, over TensorFlow.

array-api-compat has no TensorFlow namespace, and ``tf.experimental.numpy``
changes TensorFlow's global behaviour when its numpy mode is switched on, so
this module maps the handful of functions the core calls onto plain ``tf``
ops, nothing more. Every function follows the standard's signature and
semantics for the arguments the core passes; anything else is out of scope.

Creation functions place their result on ``device`` (a TensorFlow device
string, as `device` returns for an eager tensor); for a traced tensor `device`
is None, which leaves placement to TensorFlow when the graph runs.

`scatter_add_rows` (``tf.math.unsorted_segment_sum``) is not in the standard:
the TensorFlow backend gives it to `geowarp._ops.scatter_add_rows`. Importing this module also asks
AutoGraph to leave geowarp's functions unconverted (see `_exclude_from_autograph`).

Examples
--------
>>> import tensorflow as tf
>>> from geowarp.tensorflow import _namespace as xp
>>> x = xp.asarray([[1.0, 2.0], [3.0, 4.0]], dtype=xp.float64)
>>> xp.sum(xp.permute_dims(x, (1, 0)), axis=0).numpy()
array([3., 7.])
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = [
    "abs",
    "any",
    "argmax",
    "arange",
    "asarray",
    "astype",
    "bool",
    "broadcast_to",
    "clip",
    "concat",
    "device",
    "eye",
    "finfo",
    "float32",
    "float64",
    "floor",
    "full_like",
    "iinfo",
    "inf",
    "int32",
    "int64",
    "isdtype",
    "isnan",
    "linspace",
    "linalg",
    "log",
    "matrix_transpose",
    "max",
    "maximum",
    "nan",
    "ones",
    "ones_like",
    "permute_dims",
    "remainder",
    "reshape",
    "result_type",
    "round",
    "scatter_add_rows",
    "sqrt",
    "stack",
    "sum",
    "take",
    "where",
    "zeros",
    "zeros_like",
]

bool = tf.bool
int32 = tf.int32
int64 = tf.int64
float32 = tf.float32
float64 = tf.float64
nan = float("nan")
inf = float("inf")

_KINDS = {
    "bool": lambda d: d == tf.bool,
    "signed integer": lambda d: d.is_integer and not d.is_unsigned,
    "unsigned integer": lambda d: d.is_integer and d.is_unsigned,
    "integral": lambda d: d.is_integer,
    "real floating": lambda d: d.is_floating,
    "complex floating": lambda d: d.is_complex,
    "numeric": lambda d: (d.is_integer or d.is_floating or d.is_complex) and d != tf.bool,
}


@contextlib.contextmanager
def _placed(device: Any) -> Iterator[None]:
    if device:
        with tf.device(device):
            yield
    else:
        yield


def device(x: Any) -> str | None:
    """The device string of ``x``; None for a symbolic (traced) tensor, placed only at run time."""
    if tf.is_symbolic_tensor(x):
        return None
    return str(x.device) or None


def isdtype(dtype: Any, kind: Any) -> builtins.bool:
    """Whether ``dtype`` is ``kind``: a dtype, a standard kind name, or a tuple of those."""
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    dtype = tf.as_dtype(dtype)
    if isinstance(kind, str):
        return builtins.bool(_KINDS[kind](dtype))
    return dtype == tf.as_dtype(kind)


def result_type(*dtypes: Any) -> tf.DType:
    """Promotion of floating dtypes (the widest wins); integers give way to floats."""
    found = [tf.as_dtype(d) for d in dtypes]
    floating = [d for d in found if d.is_floating]
    pool = floating or found
    return builtins.max(pool, key=lambda d: d.size)


def finfo(dtype: Any) -> Any:
    """Machine limits of a floating dtype (numpy's, which carry the standard's fields)."""
    return np.finfo(tf.as_dtype(dtype).as_numpy_dtype)


def iinfo(dtype: Any) -> Any:
    """Machine limits of an integer dtype (numpy's)."""
    return np.iinfo(tf.as_dtype(dtype).as_numpy_dtype)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> tf.Tensor:
    """A tensor from ``obj``; a tensor stays on its graph and its tape (a cast at most)."""
    if isinstance(obj, tf.Tensor | tf.Variable):
        tensor = tf.convert_to_tensor(obj)
        return tensor if dtype is None else tf.cast(tensor, dtype)
    if dtype is not None:  # numpy converts Python scalars to any dtype, 0.0 to uint8 included
        obj = np.asarray(obj, dtype=tf.as_dtype(dtype).as_numpy_dtype)
    with _placed(device):
        return tf.convert_to_tensor(obj)


def astype(x: Any, dtype: Any, /, *, copy: builtins.bool = True, device: Any = None) -> tf.Tensor:
    """``x`` cast to ``dtype`` (``x`` itself when it already has it)."""
    return tf.cast(x, dtype)


def zeros(shape: Sequence[int], *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Zeros of ``shape``."""
    with _placed(device):
        return tf.zeros(shape, dtype=dtype or tf.float64)


def ones(shape: Sequence[int], *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Ones of ``shape``."""
    with _placed(device):
        return tf.ones(shape, dtype=dtype or tf.float64)


def zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Zeros shaped like ``x``."""
    return tf.zeros_like(x, dtype=dtype)


def ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """Ones shaped like ``x``."""
    return tf.ones_like(x, dtype=dtype)


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> tf.Tensor:
    """``fill_value`` everywhere, shaped like ``x``."""
    dtype = x.dtype if dtype is None else dtype
    return tf.fill(tf.shape(x), tf.constant(fill_value, dtype=dtype))


def eye(
    n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None
) -> tf.Tensor:
    """The identity (``n_rows``, ``n_cols``); only ``k=0``."""
    if k != 0:
        raise NotImplementedError("eye with k != 0 is not needed by geowarp")
    with _placed(device):
        return tf.eye(n_rows, n_cols, dtype=dtype or tf.float64)


def arange(
    start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None
) -> tf.Tensor:
    """Evenly spaced values, as ``tf.range``."""
    if stop is None:
        start, stop = 0, start
    with _placed(device):
        return tf.range(start, stop, step, dtype=dtype or tf.int64)


def linspace(
    start: float,
    stop: float,
    /,
    num: int,
    *,
    dtype: Any = None,
    device: Any = None,
    endpoint: builtins.bool = True,
) -> tf.Tensor:
    """``num`` evenly spaced values: numpy's, as one constant (one op, not a chain of them)."""
    dtype = tf.as_dtype(dtype or tf.float64)
    values = np.linspace(start, stop, num, endpoint=endpoint).astype(dtype.as_numpy_dtype)
    with _placed(device):
        return tf.constant(values, dtype=dtype)


def reshape(x: Any, /, shape: Sequence[int | None], *, copy: Any = None) -> tf.Tensor:
    """``x`` with ``shape``; one unknown (``None``) dimension of a traced tensor reads as -1."""
    return tf.reshape(x, _shape(shape))


def permute_dims(x: Any, /, axes: Sequence[int]) -> tf.Tensor:
    """Transpose ``x`` to ``axes``."""
    return tf.transpose(x, axes)


def matrix_transpose(x: Any, /) -> tf.Tensor:
    """Swap the last two axes."""
    return tf.linalg.matrix_transpose(x)


def broadcast_to(x: Any, /, shape: Sequence[int]) -> tf.Tensor:
    """``x`` broadcast to ``shape``."""
    return tf.broadcast_to(x, shape)


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> tf.Tensor:
    """Join along an existing axis."""
    if axis is None:
        return tf.concat([tf.reshape(a, (-1,)) for a in arrays], axis=0)
    return tf.concat(list(arrays), axis=axis)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> tf.Tensor:
    """Join along a new axis."""
    return tf.stack(list(arrays), axis=axis)


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> tf.Tensor:
    """Entries of ``x`` at ``indices`` along ``axis`` (in range: TF's CPU gather checks)."""
    if axis is None:
        x, axis = tf.reshape(x, (-1,)), 0
    return tf.gather(x, indices, axis=axis)


def sum(
    x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: builtins.bool = False
) -> tf.Tensor:
    """Sum over ``axis`` (all axes when None)."""
    if dtype is not None:
        x = tf.cast(x, dtype)
    return tf.reduce_sum(x, axis=_axes(axis), keepdims=keepdims)


def where(condition: Any, x1: Any, x2: Any, /) -> tf.Tensor:
    """``x1`` where ``condition`` holds, else ``x2``; Python scalars take the other's dtype."""
    x1, x2 = _pair(x1, x2)
    return tf.where(condition, x1, x2)


def clip(x: Any, /, min: Any = None, max: Any = None) -> tf.Tensor:
    """``x`` clamped into ``[min, max]``."""
    if min is not None:
        x = tf.maximum(x, tf.cast(min, x.dtype))
    if max is not None:
        x = tf.minimum(x, tf.cast(max, x.dtype))
    return x


def maximum(x1: Any, x2: Any, /) -> tf.Tensor:
    """Elementwise maximum."""
    return tf.maximum(*_pair(x1, x2))


def remainder(x1: Any, x2: Any, /) -> tf.Tensor:
    """Remainder with the divisor's sign (Python's ``%``)."""
    return tf.math.floormod(*_pair(x1, x2))


def abs(x: Any, /) -> tf.Tensor:
    """Elementwise absolute value."""
    return tf.abs(x)


def floor(x: Any, /) -> tf.Tensor:
    """Elementwise floor."""
    return tf.floor(x)


def round(x: Any, /) -> tf.Tensor:
    """Round half to even, as the standard asks."""
    return tf.round(x)


def log(x: Any, /) -> tf.Tensor:
    """Elementwise natural logarithm."""
    return tf.math.log(x)


def isnan(x: Any, /) -> tf.Tensor:
    """Elementwise NaN test."""
    return tf.math.is_nan(x)


def sqrt(x: Any, /) -> tf.Tensor:
    """Elementwise square root."""
    return tf.sqrt(x)


def any(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> tf.Tensor:
    """Whether any entry along ``axis`` is true."""
    return tf.reduce_any(tf.cast(x, tf.bool), axis=_axes(axis), keepdims=keepdims)


def max(x: Any, /, *, axis: Any = None, keepdims: builtins.bool = False) -> tf.Tensor:
    """The largest entry along ``axis``."""
    return tf.reduce_max(x, axis=_axes(axis), keepdims=keepdims)


def argmax(x: Any, /, *, axis: int | None = None, keepdims: builtins.bool = False) -> tf.Tensor:
    """Index of the first largest entry along ``axis`` (of the flattened ``x`` when None)."""
    if axis is None:
        x, axis = tf.reshape(x, (-1,)), 0
    found = tf.argmax(x, axis=axis, output_type=tf.int64)
    return tf.expand_dims(found, axis) if keepdims else found


def _solve(x1: Any, x2: Any, /) -> tf.Tensor:
    """``x1^-1 @ x2`` with the standard's broadcasting of batch dimensions."""
    if x1.shape.rank == 2 and x2.shape.rank > 2:
        # One matrix for a batch of right-hand sides: fold the batch into the columns.
        order = (x2.shape.rank - 2, *range(x2.shape.rank - 2), x2.shape.rank - 1)
        folded = tf.transpose(x2, order)
        shape = tf.shape(folded)
        solved = tf.linalg.solve(x1, tf.reshape(folded, (shape[0], -1)))
        unfolded = tf.reshape(solved, shape)
        inverse = [0] * len(order)
        for position, axis in enumerate(order):
            inverse[axis] = position
        return tf.transpose(unfolded, inverse)
    batch = tf.broadcast_dynamic_shape(tf.shape(x1)[:-2], tf.shape(x2)[:-2])
    x1 = tf.broadcast_to(x1, tf.concat([batch, tf.shape(x1)[-2:]], axis=0))
    x2 = tf.broadcast_to(x2, tf.concat([batch, tf.shape(x2)[-2:]], axis=0))
    return tf.linalg.solve(x1, x2)


def scatter_add_rows(values: Any, indices: Any, num_rows: int) -> tf.Tensor:
    """Not in the standard: rows of ``values`` (M, C) summed at ``indices`` (M,) into (num_rows, C).

    The TensorFlow backend's ``scatter_add_rows`` op; ``tf.math.unsorted_segment_sum``
    accumulates duplicates and beat ``tf.tensor_scatter_nd_add`` outside XLA.
    """
    return tf.math.unsorted_segment_sum(values, indices, num_rows)


def _svdvals(x: Any, /) -> tf.Tensor:
    """Singular values of the matrices ``x`` (..., M, N), in descending order."""
    return tf.linalg.svd(x, compute_uv=False)


def _eigh(x: Any, /) -> tuple[tf.Tensor, tf.Tensor]:
    """Eigenvalues (ascending) and eigenvectors (columns) of symmetric matrices (..., M, M)."""
    return tf.linalg.eigh(x)


linalg = SimpleNamespace(solve=_solve, svdvals=_svdvals, eigh=_eigh)
"""The ``linalg`` extension: ``solve``, ``svdvals`` and ``eigh`` only."""


def _shape(shape: Sequence[int | None]) -> Sequence[int]:
    # A traced tensor may have one unknown dimension (a dynamic batch): reshape infers it.
    return [-1 if s is None else s for s in shape]


def _axes(axis: Any) -> Any:
    return list(axis) if isinstance(axis, tuple) else axis


def _pair(x1: Any, x2: Any) -> tuple[Any, Any]:
    if not isinstance(x1, tf.Tensor | tf.Variable):
        x1 = tf.constant(x1, dtype=x2.dtype)
    elif not isinstance(x2, tf.Tensor | tf.Variable):
        x2 = tf.constant(x2, dtype=x1.dtype)
    return x1, x2


def _exclude_from_autograph() -> None:
    """Have AutoGraph call geowarp as it is instead of converting it.

    Inside a ``tf.function`` AutoGraph rewrites every Python function it meets
    unless its module is on a do-not-convert list (TensorFlow, Keras, numpy...).
    geowarp has no Python control flow on tensor values, so conversion only
    costs time (seconds per trace) and warnings; this puts it on that list.
    The list is not public API: if it moves, geowarp is simply converted again.
    """
    try:
        from tensorflow.python.autograph.core import config
    except ImportError:  # pragma: no cover - a TensorFlow that moved it
        return
    if not builtins.any(rule.matches("geowarp") for rule in config.CONVERSION_RULES):
        config.CONVERSION_RULES = (config.DoNotConvert("geowarp"), *config.CONVERSION_RULES)


_exclude_from_autograph()
