"""Operations the array API standard lacks, one function per gap.

Each runs a backend's native version where its `geowarp.backends.Backend` has
one (``ops``; numpy's built-in backend has several) and portable array-API
code otherwise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from . import backends
from ._namespace import backend_name
from ._namespace import device as array_device

__all__ = [
    "broadcast_shapes",
    "compiled",
    "compiles",
    "content_key",
    "matmul_shared",
    "matmul_shared_right",
    "scatter_add_rows",
    "sum_to_shape",
]


def scatter_add_rows(values: Any, indices: Any, num_rows: int, xp: Any) -> Any:
    """Sum rows of ``values`` (M, C) into a zero array (num_rows, C) at ``indices`` (M,).

    Duplicate indices accumulate. ``array_api_extra.at(...).add`` does not
    accumulate duplicates on every library, hence one native call per library.
    """
    native = backends.op(backend_name(xp), "scatter_add_rows")
    if native is not None:
        return native(values, indices, num_rows)
    return _scatter_add_rows_sorted(values, indices, num_rows, xp)


def _scatter_add_rows_sorted(values: Any, indices: Any, num_rows: int, xp: Any) -> Any:
    # Pure array-API fallback: sort by index, prefix-sum, and difference the
    # prefix sums at each row's first and one-past-last position.
    device = array_device(values)
    order = xp.argsort(indices, stable=True)
    sorted_indices = xp.take(indices, order, axis=0)
    sorted_values = xp.take(values, order, axis=0)
    prefix = xp.cumulative_sum(sorted_values, axis=0, include_initial=True)
    rows = xp.arange(num_rows, dtype=indices.dtype, device=device)
    first = xp.searchsorted(sorted_indices, rows, side="left")
    last = xp.searchsorted(sorted_indices, rows, side="right")
    return xp.take(prefix, last, axis=0) - xp.take(prefix, first, axis=0)


def solve(a: Any, b: Any, xp: Any) -> Any:
    """``a^-1 @ b`` for square ``a`` (..., n, n) and ``b`` (..., n, k); never raises.

    Where ``a`` is singular (its smallest singular value at most ``n * eps``
    times its largest) the solution is NaN, on every backend, eagerly and
    under tracing alike: libraries otherwise raise, or return finite
    nonsense. Callers that know the values refuse singular systems first,
    with a message (see `geowarp.ThinPlateSpline`). Meant for small systems:
    the check is an SVD of ``a``.
    """
    native = backends.op(backend_name(xp), "solve")
    x = native(a, b) if native is not None else _solve(a, b, xp)
    extent = xp.linalg.svdvals(a)  # descending
    size = a.shape[-1]
    regular = extent[..., -1] > size * xp.finfo(a.dtype).eps * extent[..., 0]  # NaN: False
    return xp.where(regular[..., None, None], x, xp.full_like(x, math.nan))


def _solve(a: Any, b: Any, xp: Any) -> Any:
    return xp.linalg.solve(a, b)


def sum_to_shape(array: Any, shape: tuple[int, ...], xp: Any) -> Any:
    """Sum ``array`` over the axes that broadcasting added to ``shape`` (the VJP of broadcast)."""
    extra = array.ndim - len(shape)
    if extra > 0:
        array = xp.sum(array, axis=tuple(range(extra)))
    stretched = tuple(
        i for i, (n, m) in enumerate(zip(shape, array.shape, strict=True)) if n == 1 and m != 1
    )
    if stretched:
        array = xp.sum(array, axis=stretched, keepdims=True)
    return array


def broadcast_shapes(*shapes: tuple[int | None, ...]) -> tuple[Any, ...]:
    """The broadcast of ``shapes`` under the standard's rules, or a `GeowarpValueError`.

    A size None (unknown while tracing) broadcasts with anything.
    """
    from ._errors import GeowarpValueError

    ndim = 0
    for shape in shapes:  # a plain loop: torch.compile traces it without a graph break
        ndim = max(ndim, len(shape))
    result: list[int | None] = [1] * ndim
    for shape in shapes:
        for axis, size in enumerate(shape, start=ndim - len(shape)):
            known = result[axis]
            if size is None or size == 1:
                if known == 1:
                    result[axis] = size
                continue
            if known not in (1, None, size):
                raise GeowarpValueError(f"batch shapes {shapes} do not broadcast")
            result[axis] = size
    return tuple(result)


def matmul_shared(left: Any, right: Any, xp: Any, *, transpose_left: bool = False) -> Any:
    """``left @ right`` (or ``left.T @ right``) for one ``left`` (N, M) shared by a batch ``right``.

    ``right`` has shape (..., M, k); the result (..., N, k) (or (..., M, k)).
    NumPy and XLA broadcast without copying ``left``; a backend whose
    broadcasting product is slow supplies its own (PyTorch's, see
    ``geowarp/torch/_ops.py``).
    """
    if left.ndim == 2 and right.ndim > 2:
        native = backends.op(backend_name(xp), "matmul_shared")
        if native is not None:
            return native(left, right, transpose_left)
    return (xp.matrix_transpose(left) if transpose_left else left) @ right


def matmul_shared_right(left: Any, right: Any, xp: Any) -> Any:
    """``left @ right`` for a batch ``left`` (..., r, m) and one shared ``right`` (m, n).

    The mirror of `matmul_shared`: the batch is folded into the rows, one
    plain product (PyTorch would run a batched one against copies of ``right``
    for a transposed ``left``).
    """
    if right.ndim != 2 or left.ndim <= 2:
        return left @ right
    rows = xp.reshape(left, (-1, left.shape[-1])) @ right
    return xp.reshape(rows, (*left.shape[:-1], right.shape[-1]))


def content_key(array: Any, xp: Any) -> tuple[Any, ...] | None:
    """A hashable key that changes whenever ``array``'s contents may have, or None.

    None where no cheap, safe key exists: a library whose backend gives no
    ``content_key`` op (only numpy's arrays and PyTorch's tensors are keyed),
    or an array its backend cannot key (traced, recording gradients, ...).
    Arrays in host memory are keyed by their values (``("value", ...)``; meant
    for small arrays); arrays on accelerators by identity and a version
    counter (``("identity", ...)``), so they are never read back to the
    host. With an identity key the caller keeps a weak reference to
    ``array`` to tell a reused ``id`` from the same array.
    """
    native = backends.op(backend_name(xp), "content_key")
    return None if native is None else native(array)


def compiled(xp: Any, function: Callable[..., Any], /, **static: Any) -> Callable[..., Any]:
    """``function`` with the keywords ``static`` bound, compiled where ``xp``'s library can.

    A backend's ``compile`` op (JAX's ``jax.jit``) compiles it, once per
    ``static`` (hashable values) for the process; elsewhere it runs as is,
    op by op. ``function`` takes and returns arrays (or tuples, lists or None
    of them) only, and branches on none of their values.
    """
    native = backends.op(backend_name(xp), "compile")
    if native is None:
        return functools.partial(function, **static)
    return _compiled(native, function, tuple(static.items()))


def compiles(xp: Any) -> bool:
    """Whether `compiled` compiles for ``xp``'s library (its backend has ``compile``)."""
    return backends.op(backend_name(xp), "compile") is not None


@functools.lru_cache(maxsize=64)
def _compiled(
    native: Callable[..., Any], function: Callable[..., Any], static: tuple[Any, ...]
) -> Callable[..., Any]:
    return native(functools.partial(function, **dict(static)))
