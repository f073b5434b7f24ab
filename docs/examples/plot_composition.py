"""
Composition and inverse
=======================

``a @ b`` applies ``b`` first to output points, then ``a``: warping with
``a @ b`` equals warping with ``a`` and then warping that result with ``b``.
``t @ t.inverse()`` is the identity, so warping with ``t`` and then with
``t.inverse()`` gives the photograph back, up to what left the frame.
Scikit-image's coffee photograph, numpy only.
"""

import numpy as np
from skimage import data

import geowarp as gw
from geowarp.demo import side_by_side, square_photo

image = square_photo(data.coffee(), 192)
a = gw.Affine(np.array([[0.9, -0.3, 0.0], [0.3, 0.9, 0.0]]))
b = gw.Projective(np.array([[1.0, 0.0, 0.2], [0.0, 1.0, 0.0], [0.5, 0.0, 1.0]]))

# %%
# ``a``, then ``b`` on its result, and ``a @ b`` in one warp (the last two agree
# inside the frame).
composed = side_by_side(
    [
        ("original", image),
        ("warp by a", gw.warp(image, a)),
        ("then by b", gw.warp(gw.warp(image, a), b)),
        ("warp by a @ b", gw.warp(image, a @ b)),
    ]
)

# %%
# A warp by ``b`` and back by ``b.inverse()``.
there = gw.warp(image, b)
round_trip = side_by_side(
    [
        ("original", image),
        ("warp by b", there),
        ("back by b.inverse()", gw.warp(there, b.inverse())),
    ]
)
