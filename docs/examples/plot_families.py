"""
Each transform family on a photograph
=====================================

An affine map, a homography and a thin-plate spline warping scikit-image's
astronaut photograph (numpy only). Each transform maps output points to input
points, so the picture moves the opposite way to the matrix read as a motion.
"""

import numpy as np
from skimage import data

import geowarp as gw
from geowarp.demo import side_by_side, square_photo

image = square_photo(data.astronaut(), 192)  # (1, 3, 192, 192)

affine = gw.Affine(np.array([[0.8, -0.3, 0.1], [0.3, 0.8, 0.0]]))
projective = gw.Projective(np.array([[1.0, 0.2, 0.0], [0.0, 1.1, 0.0], [0.0, 0.4, 1.0]]))
control = gw.ThinPlateSpline.control_points((3, 3))
moved = control.copy()
moved[4] += [0.35, 0.25]  # the centre reads from lower right: the face slides up and left
spline = gw.ThinPlateSpline.from_landmarks(moved, control)

warps = side_by_side(
    [
        ("original", image),
        ("gw.Affine", gw.warp(image, affine)),
        ("gw.Projective", gw.warp(image, projective)),
        ("gw.ThinPlateSpline", gw.warp(image, spline)),
    ]
)
