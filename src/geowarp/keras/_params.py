"""Parameter vectors to transforms, with ``keras.ops``, on every Keras backend.

The layout is the one `geowarp.torch` uses, "identity plus params", so zeros
are the identity whatever the family:

* ``"affine"``, 6 numbers: ``[[1 + p0, p1, p2], [p3, 1 + p4, p5]]``;
* ``"projective"``, 8 numbers: ``I + [p0 .. p7, 0]`` row by row;
* ``"tps"``, ``2 K`` numbers: how far each of the ``K`` control points moves,
  ``(dx0, dy0, dx1, ...)``.

The matrices are built with ``keras.ops`` (a ``-1`` batch in every reshape),
so a batch unknown until run time, as in a Keras model traced by TensorFlow,
works too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from .._errors import GeowarpValueError
from .._params import KINDS, check_control_grid, check_kind, param_count
from ..transforms import Affine, Projective, ThinPlateSpline, Transform

__all__ = ["KINDS", "check_control_grid", "check_kind", "param_count", "params_to_transform"]


def control_points(control_grid: Sequence[int]) -> np.ndarray:
    """Evenly spaced control points over [-1, 1]^2, (rows * columns, 2), x fastest."""
    rows, columns = check_control_grid(control_grid)
    xs, ys = np.meshgrid(np.linspace(-1.0, 1.0, columns), np.linspace(-1.0, 1.0, rows))
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def params_to_transform(params: Any, kind: str, control_grid: Sequence[int] = (4, 4)) -> Transform:
    """The transform a batch of parameter vectors (B, P) stands for; see the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.keras._params import params_to_transform
    >>> shift = params_to_transform(np.array([[0.0, 0.0, 0.5, 0.0, 0.0, 0.0]]), "affine")
    >>> np.asarray(shift.matrix).tolist()
    [[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]]
    """
    kind = check_kind(kind, "kind")
    count = param_count(kind, control_grid)
    if len(params.shape) != 2 or params.shape[-1] != count:
        raise GeowarpValueError(
            f"params must have shape (B, {count}) for transform {kind!r}; got {tuple(params.shape)}"
        )
    dtype = keras.backend.standardize_dtype(params.dtype)
    if kind == "tps":
        target = ops.convert_to_tensor(control_points(control_grid), dtype=dtype)
        source = target + ops.reshape(params, (-1, count // 2, 2))
        return ThinPlateSpline(source, target)
    if kind == "affine":
        rows = ops.reshape(params, (-1, 2, 3))
        return Affine(rows + ops.convert_to_tensor(np.eye(2, 3), dtype=dtype))
    last = ops.zeros_like(params[:, :1])
    rows = ops.reshape(ops.concatenate([params, last], axis=-1), (-1, 3, 3))
    return Projective(rows + ops.convert_to_tensor(np.eye(3), dtype=dtype))
