"""Keras 3 layers: differentiable warps on the TensorFlow, JAX and PyTorch backends.

`Warp` warps images by transforms given as parameter vectors; gradients reach
the images and the parameters. `SpatialTransformer` (Jaderberg et al., 2015)
predicts those parameters from the image with a localisation network you
supply and a regression head that starts at the identity. Images are
channels last by default, as Keras expects; both layers serialise with
``get_config`` and ``model.save``.

Examples
--------
>>> import numpy as np
>>> import keras
>>> from geowarp.keras import SpatialTransformer
>>> localization = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(16)])
>>> inputs = keras.Input((28, 28, 1))
>>> warped = SpatialTransformer(localization, "affine")(inputs)
>>> model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(warped)))
>>> model.output_shape
(None, 10)
"""

from .._params import param_count
from ._layers import SpatialTransformer, Warp

__all__ = ["SpatialTransformer", "Warp", "param_count"]
