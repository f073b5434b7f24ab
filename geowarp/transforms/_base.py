"""The abstract base every transform family derives from."""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, final

import numpy as np

from .._errors import GeowarpError, GeowarpTypeError, GeowarpValueError, NotInvertibleError
from .._namespace import array_namespace, backend_name, join, to_library
from .._namespace import device as array_device
from .._ops import broadcast_shapes
from ..grid import base_grid, check_allocation, check_shape, known_count


class Transform(abc.ABC):
    """A map from output (target) points to input (source) sampling points.

    ``out[p] = image[T(p)]``: warping an image by ``T`` reads, for every output
    pixel ``p``, the input at ``T.apply(p)``, as ``affine_grid``/``grid_sample``
    and the STN paper's ``T_theta(G)`` do. Transforms are immutable; a batch
    of transforms has leading ``batch_shape`` dimensions that broadcast against
    the points'.

    **Writing a family.** Subclass and implement:

    * ``apply(points)``: points (..., N, 2) in the normalized frame to
      (..., N, 2). Start with ``points = self.validate_points(points)`` (shape
      and dtype checks, the transform's dtype) and write it against
      ``self.xp`` (array-API calls only, no Python branches on values) to run
      on every backend; wrap a step in a `geowarp.autodiff.Op` for an
      explicit VJP.
    * ``batch_shape``: a property, the leading batch dimensions.

    Optional: ``inverse()`` (the default raises `NotInvertibleError`);
    ``constant_fields``, the fields gradients do not reach; and
    the parameter-vector trio ``param_count``/``from_params``/``as_params``
    ("identity plus params": zeros are the identity) that the STN modules and
    Keras layers use. Pass ``family="name"`` in the class statement to make
    the family known by name (`geowarp.transforms.get_family`).

    Everything else comes from the base: ``xp``, ``dtype``, ``device``,
    `sampling_grid`, ``@`` composition, a ``repr``, and `flatten`/`unflatten`,
    which find the transform's arrays in its fields however the class stores
    them (``__slots__``, a dataclass, plain attributes). The class is
    registered with every backend the moment it is defined (a JAX pytree,
    a TensorFlow program's argument). Check a family with `geowarp.testing`.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> class Shift(gw.Transform):
    ...     def __init__(self, offset):
    ...         self.offset = offset  # (..., 2)
    ...     @property
    ...     def batch_shape(self):
    ...         return tuple(self.offset.shape[:-1])
    ...     def apply(self, points):
    ...         points = self.validate_points(points)
    ...         return points + self.offset[..., None, :]
    ...     def inverse(self):
    ...         return Shift(-self.offset)
    >>> shift = Shift(np.array([0.5, 0.0]))
    >>> shift.apply(np.zeros((1, 2)))
    array([[0.5, 0. ]])
    >>> shift
    Shift(batch_shape=(), dtype=float64, library=numpy, device=cpu)
    """

    __slots__ = ()

    constant_fields: ClassVar[tuple[str, ...]] = ()
    """Fields whose arrays gradients do not reach (a spline's kernel centres); `geowarp.testing`
    checks the gradient w.r.t. every other array."""

    def __init_subclass__(cls, *, family: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if family is not None:
            register_family(family, cls)
        own_apply = cls.__dict__.get("apply")
        if own_apply is not None and not getattr(own_apply, "__isabstractmethod__", False):
            # numpy transforms join the library of the points they are applied to
            type.__setattr__(cls, "apply", _joining(own_apply))
        from .. import backends

        backends.notify_family(cls)

    @property
    @abc.abstractmethod
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch dimensions of the transform."""

    @abc.abstractmethod
    def apply(self, points: Any) -> Any:
        """Map points of shape (..., N, 2) to shape (..., N, 2); see the class docstring."""

    def inverse(self) -> Transform:
        """The inverse transform; raises `NotInvertibleError` unless the family defines one."""
        raise NotInvertibleError(f"{type(self).__name__} defines no inverse")

    @property
    def _reference(self) -> Any:
        # An array of the transform, whose library, dtype and device it keeps:
        # the first array among its fields. Built-in families name theirs directly.
        leaves, _ = self.flatten()
        if not leaves:
            raise GeowarpTypeError(f"{type(self).__name__} holds no arrays")
        return leaves[0]

    def validate_points(self, points: Any) -> Any:
        """``points`` (..., N, 2) checked, in this transform's library and dtype.

        Raises `GeowarpValueError` for another shape and `GeowarpTypeError`
        for a non-floating dtype or another library; the dtype is the
        promotion of the points' and the transform's.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> gw.Affine(np.eye(2, 3)).validate_points(np.zeros((3, 2), dtype=np.float32)).dtype
        dtype('float64')
        """
        return check_points(points, self)

    def __repr__(self) -> str:
        try:
            reference = self._reference
            xp = array_namespace(reference)
            detail = (
                f"batch_shape={self.batch_shape}, dtype={_dtype_name(reference.dtype)}, "
                f"library={backend_name(xp)}, device={array_device(reference)}"
            )
        except GeowarpError:
            detail = "no arrays"
        return f"{type(self).__name__}({detail})"

    def flatten(self) -> tuple[list[Any], tuple[Any, ...]]:
        """The transform's arrays and a hashable structure that rebuilds it around them.

        Arrays in the transform's fields become leaves; nested transforms (alone
        or in tuples) are walked in turn; anything else (a regularization
        weight) is part of the structure. `unflatten` is the inverse; together
        they carry a transform through compiled functions (``jax.jit``,
        ``tf.function``) and let JAX treat it as a pytree.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> leaves, structure = gw.Affine(np.eye(2, 3)).flatten()
        >>> len(leaves), type(gw.Transform.unflatten(structure, leaves)).__name__
        (1, 'Affine')
        """
        leaves: list[Any] = []
        return leaves, _flatten_into(self, leaves)

    @staticmethod
    def unflatten(structure: tuple[Any, ...], leaves: Sequence[Any]) -> Transform:
        """The transform `flatten` took apart, around ``leaves`` (its arrays, or stand-ins).

        The constructor does not run again: the parts were checked when the
        original was made, and stand-ins (tracers) need not pass its checks.
        """
        remaining = list(leaves)[::-1]
        return _unflatten_from(structure, remaining)

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


_HOST = (np.ndarray, np.generic, list, tuple)


def _joining(apply: Callable[..., Any]) -> Callable[..., Any]:
    # ``apply`` that first brings a numpy transform into the library of framework points
    if getattr(apply, "_joins", False):
        return apply

    @functools.wraps(apply)
    def joined_apply(self: Transform, points: Any, *args: Any, **kwargs: Any) -> Any:
        if points is not None and not isinstance(points, _HOST):
            self = joined(self, points, "points")
        return apply(self, points, *args, **kwargs)

    joined_apply._joins = True  # type: ignore[attr-defined]
    return joined_apply


def joined(transform: Transform, other: Any, name: str) -> Transform:
    """``transform`` in the library and device of the array ``other`` (argument ``name``).

    A transform of numpy arrays joins a framework array's library (its dtype
    kept); any other transform comes back as it is (another library's array
    is refused later, by the call's `geowarp._namespace.join`).
    """
    reference = transform._reference
    if not isinstance(reference, np.ndarray):
        return transform
    _, target = join(("transform", reference), (name, other))
    return transform if target is None else in_library(transform, target)


def composed_batch(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The batch shape of a composition of transforms of batch ``shapes``.

    Raises `GeowarpValueError` when they neither match nor broadcast.
    """
    try:
        return tuple(broadcast_shapes(*shapes))
    except GeowarpValueError:
        listed = " and ".join(str(tuple(shape)) for shape in shapes)
        raise GeowarpValueError(
            f"cannot compose transforms of batch shapes {listed}: batch shapes must match "
            "or broadcast (size 1 stretches)"
        ) from None


def in_library(transform: Transform, target: tuple[Any, Any]) -> Transform:
    """``transform`` with its numpy arrays in ``target`` = (namespace, device)."""
    leaves, structure = transform.flatten()
    converted = [to_library(leaf, target) if isinstance(leaf, _HOST) else leaf for leaf in leaves]
    return Transform.unflatten(structure, converted)


def grid_points(height: int, width: int, align_corners: bool, like: Any) -> Any:
    """The pixel centres of `geowarp.grid.base_grid` as points (H * W, 2), like ``like``."""
    grid = base_grid((height, width), align_corners=align_corners, like=like)
    return array_namespace(like).reshape(grid, (height * width, 2))


def check_points(points: Any, transform: Transform) -> Any:
    """Validate ``points`` (..., N, 2) for ``transform`` and give them its dtype.

    numpy points and sequences join the transform's library and device.
    """
    (points, _), _ = join(("points", points), ("transform", transform._reference))
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


def _flatten_into(transform: Transform, leaves: list[Any]) -> tuple[Any, ...]:
    fields: list[tuple[str, str, Any]] = []
    for name in _field_names(transform):
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


def _field_names(transform: Transform) -> list[str]:
    """The names of ``transform``'s fields: its slots, then its instance attributes."""
    names = [
        name
        for klass in reversed(type(transform).__mro__)
        for name in _slot_names(klass)
        if hasattr(transform, name)
    ]
    names.extend(name for name in getattr(transform, "__dict__", {}) if name not in names)
    return names


def _slot_names(klass: type) -> tuple[str, ...]:
    slots = klass.__dict__.get("__slots__", ())
    slots = (slots,) if isinstance(slots, str) else tuple(slots)
    return tuple(name for name in slots if name not in ("__dict__", "__weakref__"))


def _dtype_name(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype)).removeprefix("torch.")


_FAMILIES: dict[str, type[Transform]] = {}


def register_family(name: str, cls: type[Transform]) -> None:
    """Make ``cls`` known by ``name`` to `get_family`, the STN modules and the Keras layers.

    ``class Lens(gw.Transform, family="lens")`` does the same in the class statement.
    A name already taken by another class raises `GeowarpValueError`, unless
    that class has the same module and qualified name (a class defined again,
    as when a notebook cell runs twice): the new definition then replaces it.

    Examples
    --------
    >>> import geowarp as gw
    >>> from geowarp.transforms import get_family, register_family
    >>> register_family("matrix", gw.Affine)
    >>> get_family("matrix") is gw.Affine
    True
    """
    if not isinstance(name, str) or not name:
        raise GeowarpTypeError(f"family name must be a non-empty str; got {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Transform)):
        raise GeowarpTypeError(f"family must be a Transform subclass; got {cls!r}")
    taken = _FAMILIES.get(name)
    if taken is not None and _where(taken) != _where(cls):
        raise GeowarpValueError(
            f"family name {name!r} is taken by {_where(taken)}; choose another name for "
            f"{_where(cls)}"
        )
    _FAMILIES[name] = cls


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def get_family(family: str | type[Transform], name: str = "transform") -> type[Transform]:
    """The transform class registered as ``family`` (a class is returned as it is).

    Raises `GeowarpValueError` naming the argument ``name`` and the known families.

    Examples
    --------
    >>> from geowarp.transforms import get_family
    >>> get_family("tps").__name__
    'ThinPlateSpline'
    """
    if isinstance(family, type) and issubclass(family, Transform):
        return family
    cls = _FAMILIES.get(family) if isinstance(family, str) else None
    if cls is None:
        raise GeowarpValueError(
            f"{name} must be one of {family_names()} or a Transform subclass; got {family!r}"
        )
    return cls


def family_names() -> tuple[str, ...]:
    """The names of the registered families, in registration order.

    Examples
    --------
    >>> from geowarp.transforms import family_names
    >>> family_names()[:3]
    ('affine', 'projective', 'tps')
    """
    return tuple(_FAMILIES)
