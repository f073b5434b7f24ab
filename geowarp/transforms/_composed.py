"""Composition of transforms with no closed-form product."""

from __future__ import annotations

from typing import Any

from .._namespace import join
from ._base import Transform, composed_batch, in_library


class Composed(Transform):
    """Apply transforms right to left: ``Composed(a, b).apply(p) == a.apply(b.apply(p))``.

    ``a @ b`` builds this when ``a`` and ``b`` have no closed-form product
    (anything involving a `ThinPlateSpline`); nested compositions are flattened.

    Parameters
    ----------
    *transforms : Transform
        At least one transform, in maths order (the last is applied first).

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> corners = np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    >>> tps = gw.ThinPlateSpline.from_landmarks(0.5 * corners, corners)
    >>> shift = gw.Affine(np.array([[1.0, 0.0, 0.25], [0.0, 1.0, 0.0]]))
    >>> both = shift @ tps
    >>> type(both).__name__, both.apply(np.array([[1.0, 0.0]])).round(12) + 0.0
    ('Composed', array([[0.75, 0.  ]]))
    """

    __slots__ = ("_transforms",)

    def __init__(self, *transforms: Transform) -> None:
        if not transforms or not all(isinstance(t, Transform) for t in transforms):
            from .._errors import GeowarpTypeError

            raise GeowarpTypeError(f"Composed needs one or more Transforms; got {transforms!r}")
        flat: list[Transform] = []
        for transform in transforms:
            flat.extend(transform.transforms if isinstance(transform, Composed) else (transform,))
        # one library for all parts: numpy parts join the others'
        _, target = join(*((f"transforms[{i}]", t._reference) for i, t in enumerate(flat)))
        if target is not None:
            flat = [in_library(t, target) for t in flat]
        composed_batch(*(t.batch_shape for t in flat))
        self._transforms = tuple(flat)

    @property
    def transforms(self) -> tuple[Transform, ...]:
        """The parts, in maths order (the last one is applied first)."""
        return self._transforms

    @property
    def _reference(self) -> Any:
        return self._transforms[-1]._reference

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Broadcast batch dimensions of the parts."""
        return composed_batch(*(t.batch_shape for t in self._transforms))

    def apply(self, points: Any) -> Any:
        """Map points (..., N, 2) through every part, last first."""
        for transform in reversed(self._transforms):
            points = transform.apply(points)
        return points

    def inverse(self) -> Composed:
        """The parts' inverses in reverse order (`NotInvertibleError` if a part has none)."""
        return Composed(*(t.inverse() for t in reversed(self._transforms)))
