"""Operations the array API standard lacks, one function per gap, native per library."""

from __future__ import annotations

import sys
from typing import Any

from ._namespace import backend_name
from ._namespace import device as array_device

__all__ = [
    "broadcast_shapes",
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
    name = backend_name(xp)
    shape = (num_rows, values.shape[1])
    if name == "numpy":
        import numpy as np

        # bincount per channel is several times faster than np.add.at.
        columns = [
            np.bincount(indices, weights=values[:, c], minlength=num_rows)
            for c in range(values.shape[1])
        ]
        out = np.stack(columns, axis=1) if columns else np.zeros(shape)
        return out.astype(values.dtype, copy=False)
    if name == "torch":
        out = xp.zeros(shape, dtype=values.dtype, device=array_device(values))
        return out.index_add_(0, indices, values)
    if name == "jax":
        return xp.zeros(shape, dtype=values.dtype).at[indices].add(values)
    if name == "tensorflow":
        # tf.math.unsorted_segment_sum, through geowarp's TF namespace (no TF import here)
        return xp.scatter_add_rows(values, indices, num_rows)
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


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast of ``shapes`` under the standard's rules, or a `GeowarpValueError`."""
    from ._errors import GeowarpValueError

    ndim = 0
    for shape in shapes:  # a plain loop: torch.compile traces it without a graph break
        ndim = max(ndim, len(shape))
    result = [1] * ndim
    for shape in shapes:
        for axis, size in enumerate(shape, start=ndim - len(shape)):
            if size != 1 and result[axis] not in (1, size):
                raise GeowarpValueError(f"batch shapes {shapes} do not broadcast")
            result[axis] = size if size != 1 else result[axis]
    return tuple(result)


def matmul_shared(left: Any, right: Any, xp: Any, *, transpose_left: bool = False) -> Any:
    """``left @ right`` (or ``left.T @ right``) for one ``left`` (N, M) shared by a batch ``right``.

    ``right`` has shape (..., M, k); the result (..., N, k) (or (..., M, k)).
    PyTorch's broadcasting matmul copies ``left`` once per batch item and then
    runs a batched product with a tiny inner size; folding the batch into the
    columns of ``right`` makes it one plain matrix product instead (10-30x
    faster for a sampling grid). NumPy and XLA broadcast without the copy.
    """
    operand = xp.matrix_transpose(left) if transpose_left else left
    if backend_name(xp) != "torch" or left.ndim != 2 or right.ndim <= 2:
        return operand @ right
    if transpose_left:  # (right^T @ left)^T: reads right (a grid's cotangent) in place
        return xp.matrix_transpose(xp.matrix_transpose(right) @ left)
    batch, (rows, columns) = right.shape[:-2], right.shape[-2:]
    order = (right.ndim - 2, *range(right.ndim - 2), right.ndim - 1)
    folded = xp.reshape(xp.permute_dims(right, order), (rows, -1))
    product = xp.reshape(operand @ folded, (operand.shape[0], *batch, columns))
    # grid_sample and the samplers read grids far faster in row-major order
    return xp.permute_dims(product, (*range(1, len(batch) + 1), 0, len(batch) + 1)).contiguous()


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

    None where no cheap, safe key exists: a library other than numpy and
    torch, a tensor being traced or compiled, one that records gradients, or
    an inference tensor off the CPU (which has no version counter). Arrays in host memory
    are keyed by their values (``("value", ...)``; meant for small arrays);
    torch tensors on accelerators by identity and version counter
    (``("identity", ...)``), so they are never read back to the host. With an
    identity key the caller keeps a weak reference to ``array`` to tell a
    reused ``id`` from the same tensor.
    """
    name = backend_name(xp)
    if name == "numpy":
        return ("value", array.dtype.str, array.shape, array.tobytes())
    if name == "torch":
        torch = sys.modules["torch"]  # already imported: the array is a tensor
        if (
            torch.compiler.is_compiling()
            or array.requires_grad
            or type(array) is not torch.Tensor  # subclasses, fake and functorch tensors
        ):
            return None
        if array.device.type == "cpu":  # small: reading the values is cheaper than a miss
            values = array.to(torch.float64).numpy()  # exact for every float dtype
            return ("value", str(array.dtype), tuple(array.shape), values.tobytes())
        if array.is_inference():  # no version counter
            return None
        return ("identity", id(array), array._version, str(array.dtype), str(array.device))
    return None
