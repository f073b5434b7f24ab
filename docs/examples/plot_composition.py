"""
Composition and inverse
=======================

``a @ b`` applies ``b`` first to output points, then ``a``: warping with
``a @ b`` equals warping with ``a`` and then warping that result with ``b``.
``t @ t.inverse()`` is the identity, so warping with ``t`` and then with
``t.inverse()`` gives the photograph back, up to what left the frame.
"""

import numpy as np
from PIL import Image

import geowarp as gw
from geowarp.demo import load_sample


def to_picture(*images):
    """(1, 3, H, W) float arrays in [0, 1], side by side, as one Pillow image."""
    row = np.concatenate([np.clip(image[0], 0, 1) for image in images], axis=2)
    return Image.fromarray((row.transpose(1, 2, 0) * 255).astype(np.uint8))


image = load_sample()[:, :, ::2, ::2]
a = gw.Affine(np.array([[0.9, -0.3, 0.0], [0.3, 0.9, 0.0]]))
b = gw.Projective(np.array([[1.0, 0.0, 0.2], [0.0, 1.0, 0.0], [0.3, 0.0, 1.0]]))

# %%
# ``a``, then ``b`` on its result, and ``a @ b`` in one warp (the last two agree
# inside the frame).
composed = to_picture(gw.warp(image, a), gw.warp(gw.warp(image, a), b), gw.warp(image, a @ b))

# %%
# A warp by ``b`` and back by ``b.inverse()``.
there = gw.warp(image, b)
round_trip = to_picture(image, there, gw.warp(there, b.inverse()))
