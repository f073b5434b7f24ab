"""Exceptions raised by geowarp."""

from __future__ import annotations

__all__ = ["GeowarpError", "GeowarpTypeError", "GeowarpValueError", "NotInvertibleError"]


class GeowarpError(Exception):
    """Base class of every error geowarp raises on purpose.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> try:
    ...     gw.sample(np.zeros((1, 1, 4, 4)), np.zeros((1, 2, 2, 2)), mode="cubic")
    ... except gw.GeowarpError as error:
    ...     print(type(error).__name__)
    GeowarpValueError
    """


class GeowarpValueError(GeowarpError, ValueError):
    """An argument has the right type but a wrong shape or value.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> issubclass(gw.GeowarpValueError, ValueError)
    True
    """


class GeowarpTypeError(GeowarpError, TypeError):
    """An argument has the wrong type or dtype.

    Examples
    --------
    >>> import geowarp as gw
    >>> issubclass(gw.GeowarpTypeError, TypeError)
    True
    """


class GeowarpWarning(UserWarning):
    """Base class of geowarp's warnings: input that is allowed but probably a mistake.

    Examples
    --------
    >>> import geowarp as gw
    >>> issubclass(gw.GeowarpWarning, UserWarning)
    True
    """


class NotInvertibleError(GeowarpError, NotImplementedError):
    """The transform family has no closed-form inverse.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> grid = np.array([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])
    >>> tps = gw.ThinPlateSpline.from_landmarks(grid * 1.1, grid)
    >>> try:
    ...     tps.inverse()
    ... except gw.NotInvertibleError as error:
    ...     print("no closed form")
    no closed form
    """
