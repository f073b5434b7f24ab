"""Transform families: immutable maps from output points to input sampling points.

`Transform` is the public base a family subclasses; `register_family` (or
``family="name"`` in the class statement) makes a family known by name to
`get_family`, the STN modules and the Keras layers.
"""

from ._base import Transform, family_names, get_family, register_family
from ._composed import Composed
from ._matrix import Affine, MatrixTransform, Projective
from ._tps import ThinPlateSpline

__all__ = [
    "Affine",
    "Composed",
    "MatrixTransform",
    "Projective",
    "ThinPlateSpline",
    "Transform",
    "family_names",
    "get_family",
    "register_family",
]
