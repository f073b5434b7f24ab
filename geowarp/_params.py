"""How the framework layers (``geowarp.torch``, ``geowarp.keras``) reach a family's parameters.

The layouts themselves live on the families (``param_count``, ``from_params``,
``as_params``); this module only finds a family by name, checks that it has
a parameter vector, and passes each family the options it takes (a thin-plate
spline's ``control_grid`` or ``control_points``, nothing to a matrix family).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from ._errors import GeowarpValueError
from .transforms import MatrixTransform, Transform, family_names, get_family

__all__ = [
    "family_name",
    "family_options",
    "from_params",
    "matrix_family",
    "param_count",
    "parameterised_family",
]


def family_options(method: Any, **options: Any) -> dict[str, Any]:
    """The ``options`` (those not None) that ``method`` (a family's classmethod) takes by name.

    Examples
    --------
    >>> import geowarp as gw
    >>> from geowarp._params import family_options
    >>> family_options(gw.Affine.param_count, control_grid=(3, 3))
    {}
    >>> family_options(gw.ThinPlateSpline.param_count, control_grid=(3, 3))
    {'control_grid': (3, 3)}
    """
    accepted = inspect.signature(method).parameters
    return {key: value for key, value in options.items() if value is not None and key in accepted}


def parameterised_family(family: str | type[Transform], name: str) -> type[Transform]:
    """The family ``family`` names, which must have ``param_count`` and ``from_params``.

    Examples
    --------
    >>> from geowarp._params import parameterised_family
    >>> parameterised_family("projective", "transform").__name__
    'Projective'
    """
    cls = get_family(family, name)
    missing = [m for m in ("param_count", "from_params") if not hasattr(cls, m)]
    if missing:
        raise GeowarpValueError(
            f"{name} {cls.__name__} has no parameter vector: it needs the classmethods "
            f"param_count and from_params (missing {', '.join(missing)})"
        )
    return cls


def param_count(kind: str | type[Transform], control_grid: Sequence[int] = (4, 4)) -> int:
    """How many numbers a regression head predicts for a ``kind`` of transform.

    Parameters
    ----------
    kind : str or Transform subclass
        A family with a parameter vector: ``"affine"`` (6), ``"projective"``
        (8), ``"tps"`` (2 per control point), or one registered with
        `geowarp.transforms.register_family`.
    control_grid : (rows, columns)
        For families with control points (``"tps"``); ignored by the others.

    Examples
    --------
    >>> from geowarp._params import param_count
    >>> param_count("affine"), param_count("projective"), param_count("tps", (3, 5))
    (6, 8, 30)
    """
    method = parameterised_family(kind, "kind").param_count  # type: ignore[attr-defined]
    return int(method(**family_options(method, control_grid=control_grid)))


def from_params(family: type[Transform], params: Any, **options: Any) -> Transform:
    """``family.from_params(params)`` with those of ``options`` it takes.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> from geowarp._params import from_params
    >>> from_params(gw.Affine, np.zeros(6), control_grid=(2, 2)).matrix.shape
    (2, 3)
    """
    method = family.from_params  # type: ignore[attr-defined]
    return method(params, **family_options(method, **options))


def matrix_family(family: str | type[Transform], name: str) -> type[MatrixTransform]:
    """The matrix family ``family`` names (its updates compose by matrix products).

    Examples
    --------
    >>> from geowarp._params import matrix_family
    >>> matrix_family("affine", "kind").__name__
    'Affine'
    """
    cls = get_family(family, name)
    if not issubclass(cls, MatrixTransform):
        raise GeowarpValueError(
            f"{name} must be a matrix family (such as 'affine' or 'projective'), whose "
            f"updates compose by matrix products; got {family!r}"
        )
    return cls


def family_name(family: type[Transform]) -> str | None:
    """The name ``family`` is registered under, or None.

    Examples
    --------
    >>> import geowarp as gw
    >>> from geowarp._params import family_name
    >>> family_name(gw.ThinPlateSpline), family_name(gw.Composed)
    ('tps', None)
    """
    return next((name for name in family_names() if get_family(name) is family), None)
