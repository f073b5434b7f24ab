"""The TensorFlow `geowarp.backends.Backend`: its namespace, gradients, kernels, whole warps."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ..backends import Backend
from ..samplers._coordinates import padded_by_concat
from . import _namespace
from ._autograd import call
from ._native import KERNELS
from ._warp import inference_warp


def _owns(array: Any) -> bool:
    return isinstance(array, tf.Tensor | tf.Variable)


def _read(array: Any) -> Any:
    # a variable's current value, read where an active GradientTape records it
    return tf.convert_to_tensor(array) if isinstance(array, tf.Variable) else array


def _padded_channels_last(image: tf.Tensor, fill: tf.Tensor) -> tf.Tensor:
    # no in-place update: the ring is built by concatenation
    return padded_by_concat(tf.transpose(image, (0, 2, 3, 1)), fill, _namespace)


def _known_values(array: tf.Tensor) -> Any:
    # a symbolic tensor (inside tf.function or a Keras graph) has no values yet
    return None if tf.is_symbolic_tensor(array) else array.numpy()


BACKEND = Backend(
    "tensorflow",
    autodiff=call,
    samplers=KERNELS,
    warp=inference_warp,
    ops={
        "scatter_add_rows": _namespace.scatter_add_rows,
        "padded_channels_last": _padded_channels_last,
        "known_values": _known_values,
    },
    owns=_owns,
    namespace=_namespace,
    read=_read,
)
"""Loaded the first time geowarp sees a TensorFlow tensor, or on ``import geowarp.tensorflow``."""
