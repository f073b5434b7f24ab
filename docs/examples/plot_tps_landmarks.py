"""
Thin-plate spline from landmarks
================================

`geowarp.ThinPlateSpline.from_landmarks` builds the spline with
``T.apply(target) == source``: warping scikit-image's cat photograph moves
each source landmark (red) onto its target (green).
"""

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

import geowarp as gw
from geowarp.demo import side_by_side, square_photo

image = square_photo(data.chelsea(), 224)
shape = image.shape[-2:]
source = np.array([[-0.5, -0.5], [0.5, -0.5], [0.0, 0.0], [-0.5, 0.5], [0.5, 0.5]])
target = np.array([[-0.7, -0.6], [0.6, -0.4], [0.1, 0.15], [-0.4, 0.7], [0.7, 0.6]])
spline = gw.ThinPlateSpline.from_landmarks(source, target)
warped = gw.warp(image, spline)


def mark(array, points, colour):
    """Circle the points (normalized frame) on a copy of a (1, 3, H, W) array."""
    picture = Image.fromarray((np.clip(array[0], 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8))
    canvas = ImageDraw.Draw(picture)
    for x, y in gw.grid.normalized_to_pixel(points, shape):
        canvas.ellipse([x - 6, y - 6, x + 6, y + 6], outline=colour, width=3)
    return (np.asarray(picture) / 255).transpose(2, 0, 1)[None]


landmarks = side_by_side(
    [
        ("source landmarks (red)", mark(image, source, "red")),
        ("warped: on the targets (green)", mark(warped, target, "lime")),
    ]
)
