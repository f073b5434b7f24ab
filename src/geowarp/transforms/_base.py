"""The abstract base every transform family derives from."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, final

from .._errors import GeowarpTypeError, GeowarpValueError
from .._namespace import array_namespace, read_variable
from .._namespace import device as array_device
from ..grid import base_grid, check_allocation, check_shape, known_count


class Transform(abc.ABC):
    """A map from output (target) points to input (source) sampling points.

    ``out[p] = image[T(p)]``: warping an image by ``T`` reads, for every output
    pixel ``p``, the input at ``T.apply(p)``, as ``affine_grid``/``grid_sample``
    and the STN paper's ``T_theta(G)`` do. Transforms are immutable; a batch
    of transforms has leading ``batch_shape`` dimensions that broadcast against
    the points'.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def _reference(self) -> Any:
        """An array of the transform, whose library, dtype and device it keeps."""

    @property
    @abc.abstractmethod
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch dimensions of the transform."""

    @abc.abstractmethod
    def apply(self, points: Any) -> Any:
        """Map points of shape (..., N, 2) to shape (..., N, 2); see the class docstring."""

    @abc.abstractmethod
    def inverse(self) -> Transform:
        """The inverse transform, or `NotInvertibleError` where no closed form exists."""

    @property
    @final
    def xp(self) -> Any:
        """The array namespace of the transform's arrays."""
        return array_namespace(self._reference)

    @property
    @final
    def dtype(self) -> Any:
        """The floating dtype of the transform's arrays."""
        return self._reference.dtype

    @property
    @final
    def device(self) -> Any:
        """The device of the transform's arrays."""
        return array_device(self._reference)

    def __matmul__(self, other: Transform) -> Transform:
        """``(a @ b).apply(p) == a.apply(b.apply(p))``."""
        if not isinstance(other, Transform):
            return NotImplemented
        from ._composed import Composed

        return Composed(self, other)

    @final
    def sampling_grid(self, out_shape: Sequence[int], *, align_corners: bool = False) -> Any:
        """The sampling grid of an ``out_shape`` output: `apply` at each pixel centre.

        Parameters
        ----------
        out_shape : (H_out, W_out)
            Output height and width.
        align_corners : bool
            Frame convention of `geowarp.grid`.

        Returns
        -------
        grid : array of shape (*batch_shape, H_out, W_out, 2)
            Normalized source coordinates, ready for `geowarp.sample`.
        """
        height, width = check_shape(out_shape, "out_shape")
        batch = known_count(*self.batch_shape)  # an unknown batch (tracing) counts as 1
        itemsize = _itemsize(self.xp, self.dtype)
        check_allocation(batch * height * width * 2, itemsize, f"a sampling grid of {out_shape}")
        return self._grid(height, width, align_corners)

    def _grid(self, height: int, width: int, align_corners: bool) -> Any:
        """`apply` at every pixel centre of the `geowarp.grid` frame, (*batch_shape, H, W, 2).

        Families with a cheaper form override this (separable matrix maps,
        cached spline weights); the contract tests pin every override to `apply`.
        """
        xp = self.xp
        points = grid_points(height, width, align_corners, self._reference)
        mapped = self.apply(points)
        return xp.reshape(mapped, (*mapped.shape[:-2], height, width, 2))


def grid_points(height: int, width: int, align_corners: bool, like: Any) -> Any:
    """The pixel centres of `geowarp.grid.base_grid` as points (H * W, 2), like ``like``."""
    grid = base_grid((height, width), align_corners=align_corners, like=like)
    return array_namespace(like).reshape(grid, (height * width, 2))


def check_points(points: Any, transform: Transform) -> Any:
    """Validate ``points`` (..., N, 2) for ``transform`` and give them its dtype."""
    points = read_variable(points)
    xp = array_namespace(points, transform._reference)
    if points.ndim < 2 or points.shape[-1] != 2:
        raise GeowarpValueError(f"points must have shape (..., N, 2); got {tuple(points.shape)}")
    if not xp.isdtype(points.dtype, "real floating"):
        raise GeowarpTypeError(f"points must have a real floating dtype; got {points.dtype}")
    return xp.astype(points, xp.result_type(points.dtype, transform.dtype), copy=False)


def check_matrix(matrix: Any, shapes: tuple[tuple[int, int], ...], name: str) -> Any:
    """Validate a floating ``matrix`` whose last two dimensions are one of ``shapes``."""
    xp = array_namespace(matrix)
    if matrix.ndim < 2 or tuple(matrix.shape[-2:]) not in shapes:
        wanted = " or ".join(f"(..., {r}, {c})" for r, c in shapes)
        raise GeowarpValueError(f"{name} must have shape {wanted}; got {tuple(matrix.shape)}")
    if not xp.isdtype(matrix.dtype, "real floating"):
        raise GeowarpTypeError(f"{name} must have a real floating dtype; got {matrix.dtype}")
    return matrix


def _itemsize(xp: Any, dtype: Any) -> int:
    return xp.finfo(dtype).bits // 8 if xp.isdtype(dtype, "real floating") else 8


def flatten(transform: Transform) -> tuple[list[Any], tuple[Any, ...]]:
    """The arrays of ``transform`` and a hashable structure that rebuilds it around them.

    Walks the ``__slots__`` of every family: arrays become leaves, transforms
    (alone or in tuples) are walked in turn, anything else (a regularization
    weight) is part of the structure. `unflatten` is the inverse; together
    they carry a transform through a compiled function.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> from geowarp.transforms._base import flatten, unflatten
    >>> leaves, structure = flatten(gw.Affine(np.eye(2, 3)))
    >>> len(leaves), type(unflatten(structure, leaves)).__name__
    (1, 'Affine')
    """
    leaves: list[Any] = []
    return leaves, _flatten_into(transform, leaves)


def _flatten_into(transform: Transform, leaves: list[Any]) -> tuple[Any, ...]:
    fields: list[tuple[str, str, Any]] = []
    for name in _slots(type(transform)):
        value = getattr(transform, name)
        if isinstance(value, Transform):
            fields.append((name, "transform", _flatten_into(value, leaves)))
        elif isinstance(value, tuple) and all(isinstance(v, Transform) for v in value):
            fields.append((name, "transforms", tuple(_flatten_into(v, leaves) for v in value)))
        elif hasattr(value, "shape") and hasattr(value, "dtype"):
            leaves.append(value)
            fields.append((name, "array", None))
        else:
            fields.append((name, "static", value))
    return (type(transform), tuple(fields))


def unflatten(structure: tuple[Any, ...], leaves: Sequence[Any]) -> Transform:
    """The transform `flatten` took apart, around ``leaves`` (its arrays, or stand-ins)."""
    remaining = list(leaves)[::-1]
    return _unflatten_from(structure, remaining)


def _unflatten_from(structure: tuple[Any, ...], remaining: list[Any]) -> Transform:
    cls, fields = structure
    transform = cls.__new__(cls)  # the parts were validated when the original was made
    for name, kind, content in fields:
        value: Any
        if kind == "transform":
            value = _unflatten_from(content, remaining)
        elif kind == "transforms":
            value = tuple(_unflatten_from(part, remaining) for part in content)
        elif kind == "array":
            value = remaining.pop()
        else:
            value = content
        object.__setattr__(transform, name, value)
    return transform


def _slots(cls: type) -> list[str]:
    return [name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ())]
