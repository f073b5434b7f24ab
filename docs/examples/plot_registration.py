"""
Registering two images
======================

`geowarp.register` recovers the homography between the sample photograph
and a copy seen through another one: fixed, moving, moving warped onto
fixed, and the difference before and after.
"""

import numpy as np
from PIL import Image

import geowarp as gw
from geowarp.demo import load_sample

fixed = load_sample()[:, :, ::2, ::2].mean(axis=1, keepdims=True)  # (1, 1, 128, 128), grey
truth = gw.Projective(np.array([[1.05, -0.08, 0.05], [0.06, 0.97, -0.04], [0.05, -0.03, 1.0]]))
moving = gw.warp(fixed, truth.inverse())
result = gw.register(moving, fixed, "projective")
print(result.transform.matrix.round(3))
print("loss", result.loss)

tiles = [fixed, moving, result.warped, np.abs(moving - fixed), np.abs(result.warped - fixed)]
row = np.concatenate([np.clip(tile[0, 0], 0, 1) for tile in tiles], axis=1)
panel = Image.fromarray((row * 255).astype(np.uint8))
