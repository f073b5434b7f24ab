"""Transform families: immutable maps from output points to input sampling points."""

from ._base import Transform
from ._composed import Composed
from ._matrix import Affine, MatrixTransform, Projective
from ._tps import ThinPlateSpline

__all__ = ["Affine", "Composed", "MatrixTransform", "Projective", "ThinPlateSpline", "Transform"]
