"""Parameter-vector conventions shared by the framework layers (``geowarp.torch``,
``geowarp.keras``): the families, their parameter counts and the thin-plate
spline's control grid. Framework-free; each layer builds its arrays itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._errors import GeowarpValueError
from .grid import check_shape

__all__ = ["KINDS", "check_control_grid", "check_kind", "param_count"]

KINDS = ("affine", "projective", "tps")
# identity plus params: 6 numbers for the 2x3 affine matrix, 8 for a homography
# without its last entry
_MATRIX_PARAMS = {"affine": 6, "projective": 8}


def check_kind(kind: Any, name: str = "kind", allowed: Sequence[str] = KINDS) -> str:
    """Return ``kind`` if it is one of ``allowed``, else raise naming the argument ``name``."""
    if kind not in allowed:
        raise GeowarpValueError(f"{name} must be one of {tuple(allowed)}; got {kind!r}")
    return str(kind)


def check_control_grid(control_grid: Sequence[int]) -> tuple[int, int]:
    """Return ``control_grid`` as ``(rows, columns)``, each at least 2, or raise."""
    rows, columns = check_shape(control_grid, "control_grid")
    if rows < 2 or columns < 2:
        # one row or column of control points is collinear: the spline's system is singular
        raise GeowarpValueError(
            f"control_grid needs at least 2 rows and 2 columns; got {tuple(control_grid)!r}"
        )
    return rows, columns


def param_count(kind: str, control_grid: Sequence[int] = (4, 4)) -> int:
    """How many numbers a regression head predicts for a ``kind`` of transform.

    Parameters
    ----------
    kind : {"affine", "projective", "tps"}
        The transform family.
    control_grid : (rows, columns)
        The thin-plate spline's grid of control points; ignored by the matrix families.

    Examples
    --------
    >>> from geowarp._params import param_count
    >>> param_count("affine"), param_count("projective"), param_count("tps", (3, 5))
    (6, 8, 30)
    """
    kind = check_kind(kind)
    if kind == "tps":
        rows, columns = check_control_grid(control_grid)
        return 2 * rows * columns
    return _MATRIX_PARAMS[kind]
