"""`Registration`: what `geowarp.register` found."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..transforms import Transform


@dataclass(frozen=True, repr=False)
class Registration:
    """The result of `geowarp.register`.

    Attributes
    ----------
    transform : Transform
        Maps fixed (output) points to moving (input) points in the
        normalized frame, so ``gw.warp(moving, transform, fixed.shape[-2:])``
        matches ``fixed``. Batch shape ``(B,)`` for images (B, C, H, W),
        ``()`` for a pair of (H, W) images.
    warped : array of shape (B, C, H, W) or (H, W)
        The moving image warped onto the fixed image's grid (zeros where it
        has no pixels), in the moving image's layout and working dtype.
    loss : array of shape (B,), or float
        Final loss per pair over the valid pixels: the mean squared
        difference (``"mse"``), ``1 - NCC`` (``"ncc"``) or minus the mutual
        information in nats (``"mi"``).
    loss_curve : numpy array of shape (iterations, B) or (iterations,)
        The best loss so far after each iteration, coarse levels first (a
        coarse level's loss is not comparable with a finer one's).
    iterations : int
        Iterations run, over every level (and both stages of a spline).
    converged : array of shape (B,) of bool, or bool
        Whether the last level's updates fell below the tolerance before
        ``max_iterations``.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> yy, xx = np.mgrid[-1:1:32j, -1:1:32j]
    >>> fixed = np.exp(-4 * ((xx - 0.1) ** 2 + (yy + 0.2) ** 2))
    >>> result = gw.register(fixed, fixed)
    >>> result.transform.matrix.round(6) + 0.0
    array([[1., 0., 0.],
           [0., 1., 0.]])
    >>> result.loss < 1e-12, result.converged, result.loss_curve.shape == (result.iterations,)
    (True, True, True)
    """

    transform: Transform
    warped: Any
    loss: Any
    loss_curve: np.ndarray
    iterations: int
    converged: Any

    def __repr__(self) -> str:
        shape = tuple(getattr(self.warped, "shape", ()))
        loss = np.round(np.asarray(_host(self.loss), dtype=np.float64), 6).tolist()
        converged = np.asarray(_host(self.converged)).tolist()
        return (
            f"Registration(transform={type(self.transform).__name__} of batch "
            f"{self.transform.batch_shape}, warped shape {shape}, loss={loss}, "
            f"iterations={self.iterations}, converged={converged})"
        )


def _host(values: Any) -> Any:
    from .._namespace import known_values

    return values if isinstance(values, float | bool) else known_values(values)
