"""
Each transform family on a photograph
=====================================

An affine map, a homography and a thin-plate spline warping geowarp's sample
photograph (numpy only). Each transform maps output points to input points.
"""

import numpy as np
from PIL import Image

import geowarp as gw
from geowarp.demo import load_sample


def to_picture(*images):
    """(1, 3, H, W) float arrays in [0, 1], side by side, as one Pillow image."""
    row = np.concatenate([np.clip(image[0], 0, 1) for image in images], axis=2)
    return Image.fromarray((row.transpose(1, 2, 0) * 255).astype(np.uint8))


image = load_sample()[:, :, ::2, ::2]  # (1, 3, 128, 128)

affine = gw.Affine(np.array([[0.8, -0.3, 0.1], [0.3, 0.8, 0.0]]))
projective = gw.Projective(np.array([[1.0, 0.2, 0.0], [0.0, 1.1, 0.0], [0.0, 0.4, 1.0]]))
control = gw.ThinPlateSpline.control_points((3, 3))
spline = gw.ThinPlateSpline.from_landmarks(control + 0.15 * np.sin(3 * control[:, ::-1]), control)

warps = to_picture(image, *(gw.warp(image, t) for t in (affine, projective, spline)))
