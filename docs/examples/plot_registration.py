"""
Registering two images
======================

`geowarp.register` recovers the homography between scikit-image's camera
photograph and a copy seen through another one: fixed, moving, moving warped
onto fixed, and the difference before and after (numpy only).
"""

import numpy as np
from skimage import data

import geowarp as gw
from geowarp.demo import side_by_side, square_photo

camera = np.stack([data.camera()] * 3, axis=-1)  # the loader takes RGB
fixed = square_photo(camera, 160)[:, :1]  # (1, 1, 160, 160), grey
truth = gw.Projective(np.array([[1.05, -0.08, 0.05], [0.06, 0.97, -0.04], [0.05, -0.03, 1.0]]))
moving = gw.warp(fixed, truth.inverse())
result = gw.register(moving, fixed, "projective")
print(result.transform.matrix.round(3))
print("loss", result.loss)

panel = side_by_side(
    [
        ("fixed", fixed),
        ("moving", moving),
        ("registered", result.warped),
        ("|moving - fixed|", np.abs(moving - fixed)),
        ("|registered - fixed|", np.abs(result.warped - fixed)),
    ]
)
