"""Transforms estimated from point correspondences.

``gw.Affine.from_estimate``, ``gw.Projective.from_estimate`` and
``gw.ThinPlateSpline.from_estimate`` fit a transform to pairs of points:
weighted least squares (affine), the normalized (Hartley) DLT (projective)
and the thin-plate spline through the landmarks. They follow geowarp's
direction: the fit ``T`` satisfies ``T.apply(target_points) ~=
source_points``, so ``gw.warp(source_image, T, target_shape)`` brings the
source image into the target's frame. scikit-image, OpenCV and kornia
estimate the opposite, forward map (source to destination): theirs is
``T.inverse()``.

The result is a plain transform, usable everywhere, or a falsy
`FailedEstimation` saying why the points cannot determine one (too few,
mismatched, non-finite, coinciding or collinear points). Points (..., N, 2)
give a batch of fits with batch shape (...), each a batch of small matrix
operations written against the array API, so torch, JAX and TensorFlow
differentiate through them. Where the values are unknown (under
``jax.jit``, ``tf.function``, ``torch.compile``) the checks are skipped and
a degenerate fit is non-finite (docs/reliability.md).

`residuals` measures a fit on any correspondences; `ransac` fits robustly,
all its hypotheses in one batched call.

Examples
--------
>>> import numpy as np
>>> import geowarp as gw
>>> target = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
>>> source = 0.5 * target + 0.25
>>> fit = gw.Affine.from_estimate(source, target)
>>> fit.matrix + 0.0
array([[0.5 , 0.  , 0.25],
       [0.  , 0.5 , 0.25]])
>>> bool(np.allclose(fit.apply(target), source))
True
>>> gw.estimate.residuals(fit, source, target).max() < 1e-12
np.True_
"""

from ._failure import FailedEstimation
from ._ransac import RansacResult, ransac, residuals

__all__ = ["FailedEstimation", "RansacResult", "ransac", "residuals"]
