"""
Thin-plate spline from landmarks
================================

`geowarp.ThinPlateSpline.from_landmarks` builds the spline with
``T.apply(target) == source``: warping the image moves each source landmark
(red) onto its target (green).
"""

import numpy as np
from PIL import Image, ImageDraw

import geowarp as gw
from geowarp.demo import load_sample

image = load_sample()[:, :, ::2, ::2]
shape = image.shape[-2:]
source = np.array([[-0.5, -0.5], [0.5, -0.5], [0.0, 0.0], [-0.5, 0.5], [0.5, 0.5]])
target = np.array([[-0.7, -0.6], [0.6, -0.4], [0.1, 0.15], [-0.4, 0.7], [0.7, 0.6]])
spline = gw.ThinPlateSpline.from_landmarks(source, target)
warped = gw.warp(image, spline)


def draw(array, points, colour):
    """The (1, 3, H, W) image as a Pillow image, landmarks drawn at their pixels."""
    picture = Image.fromarray((np.clip(array[0], 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8))
    canvas = ImageDraw.Draw(picture)
    for x, y in gw.grid.normalized_to_pixel(points, shape):
        canvas.ellipse([x - 4, y - 4, x + 4, y + 4], outline=colour, width=2)
    return picture


before, after = draw(image, source, "red"), draw(warped, target, "lime")
landmarks = Image.new("RGB", (2 * before.width, before.height))
landmarks.paste(before, (0, 0))
landmarks.paste(after, (before.width, 0))
del before, after
