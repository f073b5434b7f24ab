"""The falsy result of an estimation that could not be made."""

from __future__ import annotations

from typing import Any, NoReturn

from .._errors import GeowarpValueError

__all__ = ["FailedEstimation"]


class FailedEstimation:
    """What ``from_estimate`` returns when the points cannot determine a transform.

    It is falsy, and says why in `message`; using it as a transform (``.apply``,
    ``.matrix``, ``.inverse()``, ``@``...) raises `GeowarpValueError` repeating
    that message, so a failed fit never passes silently as an identity or a
    NaN transform.

    Parameters
    ----------
    message : str
        Why the estimation failed: too few points, mismatched counts,
        non-finite, coinciding or collinear points.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> line = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    >>> estimate = gw.Affine.from_estimate(line, line)
    >>> bool(estimate)
    False
    >>> print(estimate.message)
    an affine fit failed: all target_points lie on one line (it needs 3 points off a line)
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"FailedEstimation({self.message!r})"

    def __getattr__(self, name: str) -> Any:
        # only missing names land here; private and special ones stay AttributeErrors,
        # so copy, pickle and IPython's probing keep working
        if name.startswith("_"):
            raise AttributeError(name)
        self._refuse(f".{name}")

    def __matmul__(self, other: Any) -> NoReturn:
        self._refuse("@")

    def __rmatmul__(self, other: Any) -> NoReturn:
        self._refuse("@")

    def _refuse(self, what: str) -> NoReturn:
        raise GeowarpValueError(
            f"this estimation failed, so it has no {what}: {self.message} "
            "(check the result with `if not estimate: print(estimate.message)`)"
        )
