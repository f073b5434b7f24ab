"""geowarp: differentiable geometric warps on any array library.

Transforms map output (target) points to input (source) sampling points;
samplers read images at those points with ``grid_sample`` semantics.
Nothing here imports PyTorch, JAX or TensorFlow until you pass their arrays.

Examples
--------
>>> import numpy as np
>>> import geowarp as gw
>>> image = np.zeros((1, 1, 8, 8))
>>> zoom = gw.Affine(np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]))
>>> gw.warp(image, zoom, (4, 4)).shape
(1, 1, 4, 4)
"""

from . import estimate, grid
from ._errors import (
    GeowarpError,
    GeowarpTypeError,
    GeowarpValueError,
    GeowarpWarning,
    NotInvertibleError,
)
from .estimate import FailedEstimation
from .registration import Registration, register
from .samplers import sample
from .transforms import Affine, Composed, Projective, ThinPlateSpline, Transform
from .warp import warp

__all__ = [
    "Affine",
    "Composed",
    "FailedEstimation",
    "GeowarpError",
    "GeowarpTypeError",
    "GeowarpWarning",
    "GeowarpValueError",
    "NotInvertibleError",
    "Projective",
    "Registration",
    "ThinPlateSpline",
    "Transform",
    "estimate",
    "grid",
    "register",
    "sample",
    "warp",
]

__version__ = "0.1.0.dev0"
