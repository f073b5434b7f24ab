"""TensorFlow support: geowarp's ops differentiable under ``tf.GradientTape``.

Nothing to import from here: pass TensorFlow tensors to `geowarp.warp`,
`geowarp.sample` or a transform and gradients reach the image, the grid and
the transform's parameters.

Examples
--------
>>> import tensorflow as tf
>>> import geowarp as gw
>>> image = tf.random.uniform((2, 3, 8, 8))
>>> theta = tf.constant([[[0.9, -0.1, 0.0], [0.1, 0.9, 0.0]]] * 2)
>>> with tf.GradientTape() as tape:
...     tape.watch(theta)
...     loss = tf.reduce_sum(gw.warp(image, gw.Affine(theta), (4, 4)) ** 2)
>>> tape.gradient(loss, theta).shape
TensorShape([2, 2, 3])
"""

from .. import backends
from ._backend import BACKEND

backends.register(BACKEND)

__all__: list[str] = []
