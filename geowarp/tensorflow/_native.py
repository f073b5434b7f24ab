"""TensorFlow kernels for the samplers: the fast path of `geowarp.sample` on TF tensors.

The maths is the core's (`geowarp.samplers`): the same padded channels-last
copy of the image, the same clamped coordinates from
`geowarp.samplers._coordinates.source_pixels`, the same VJPs. What differs is
the layout, chosen for TensorFlow's kernels and XLA:

* the forward reads the four neighbours with four gathers from the padded
  image and blends them by linear interpolation, keeping the three
  differences the grid's gradient needs;
* the backward scatters one row of ``4 C`` values per output point (its
  cotangent times each neighbour's weight) into the grid of 2x2 patches with
  ``tf.math.unsorted_segment_sum``, then folds the patches back onto the
  pixels with four shifted slices. One wide row per point is much cheaper
  than four narrow ones, on the CPU and under XLA alike; the batch is split
  into a few parts whose sums run side by side (TF's CPU kernel is serial);
* the pixel coordinates are materialised once (`_materialised`), which keeps
  XLA from re-reading the transform's output in a transposed layout.

Only the batch may be unknown until run time (``None`` in a ``tf.function``
or a Keras model); row numbers come from the samplers' `flat_index`, ``int32``
while every row of the padded image fits in one, ``int64`` otherwise.
Coordinates are clamped into the padding ring, so every index is in range
(TensorFlow's CPU gather checks).

Each step is a `Step`: eagerly, the first call with a new signature (shapes,
dtypes, device and settings) runs op by op, and from its second call on the
step runs as an XLA-compiled ``tf.function`` (one trace and one compilation per
signature), on the image's device. Compiling costs tenths of a second to a
second per signature, running op by op a few times what the compiled program
costs, so a shape seen once (a notebook, one level of a pyramid) never waits
for XLA, and a shape that repeats (a training loop) is compiled on its second
call. Inside a caller's ``tf.function`` the compiled step is one call in the
caller's graph (the caller traces anyway).

tests/test_tensorflow.py pins these kernels to the portable code (values and
gradients).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import tensorflow as tf
from tensorflow.python.eager import record  # no public equivalent: is a tape active?

from .._errors import GeowarpValueError
from ..samplers._coordinates import (
    fill_cotangent,
    flat_index,
    padded_channels_last,
    source_pixels,
)
from . import _namespace as xp

__all__ = [
    "KERNELS",
    "Kernel",
    "Step",
    "bilinear",
    "nearest",
    "placed_like",
    "recording",
]


def _static_sizes(image: tf.Tensor, grid: tf.Tensor) -> tuple[int, int, int, int, int]:
    """(C, H, W, H_out, W_out); only the batch may be unknown while tracing."""
    sizes = (*image.shape[1:], *grid.shape[1:3])
    if any(size is None for size in sizes):
        raise GeowarpValueError(
            "sampling on TensorFlow needs static channel and spatial sizes (only the batch may "
            f"be unknown); got image shape {image.shape} and grid shape {grid.shape}"
        )
    return tuple(int(size) for size in sizes)  # type: ignore[return-value]


#: At most this many parts of a batch are scattered side by side (see `_batch_parts`).
_MAX_PARTS = 4


def _rows(x: tf.Tensor, y: tf.Tensor, image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Flat rows (B * H_out * W_out,) of the pixels ``(x, y)`` in a (B, height, width) layout.

    The samplers' own `flat_index`, with int32 rows while they fit (faster gathers and
    segment sums here) and the batch read at run time when unknown while tracing.
    """
    padded_shape = (image.shape[0], height, width, image.shape[1])
    return flat_index(x, y, padded_shape, xp, batch=tf.shape(image)[0], narrow=True)


def _materialised(columns: list[tf.Tensor]) -> list[tf.Tensor]:
    """``columns`` (finite, of one shape) themselves, computed once into a row-major buffer.

    Under XLA, a grid built by a transform (a matmul, then a broadcast add) is
    otherwise fused into each of the dozen consumers of the coordinates, which
    then read the matmul's output in its transposed layout: twice the time of
    the whole warp. A product with the identity is the one op XLA neither fuses
    through nor simplifies away, and on finite values it is exact
    (``x * 1 + y * 0 == x``); the clamped pixel coordinates always are finite.
    """
    stacked = tf.stack(columns, axis=-1)
    count = len(columns)
    flat = tf.reshape(stacked, (-1, count)) @ tf.eye(count, dtype=stacked.dtype)
    return tf.unstack(tf.reshape(flat, tf.shape(stacked)), axis=-1)


def _pixels(
    grid: tf.Tensor, height: int, width: int, padding: str, align_corners: bool
) -> list[tf.Tensor]:
    """Clamped pixel coordinates (x, y) and their slopes (x, y), see `source_pixels`."""
    x, slope_x = source_pixels(grid[..., 0], width, padding, align_corners, xp)
    y, slope_y = source_pixels(grid[..., 1], height, padding, align_corners, xp)
    return [*_materialised([x, y]), slope_x, slope_y]


def _bilinear_forward(
    image: tf.Tensor, grid: tf.Tensor, fill: tf.Tensor, padding: str, align_corners: bool
) -> tuple[tf.Tensor, tuple[tf.Tensor, ...]]:
    channels, height, width, out_h, out_w = _static_sizes(image, grid)
    batch = tf.shape(image)[0]
    padded = padded_channels_last(image, fill, xp)  # (B, H + 3, W + 3, C)
    x, y, slope_x, slope_y = _pixels(grid, height, width, padding, align_corners)
    x0, y0 = tf.floor(x), tf.floor(y)
    weight_x, weight_y = (x - x0)[..., None], (y - y0)[..., None]
    rows = _rows(x0, y0, image, height + 3, width + 3)
    flat = tf.reshape(padded, (-1, channels))
    shape = (batch, out_h, out_w, channels)
    v00, v01, v10, v11 = (
        tf.reshape(tf.gather(flat, rows + offset), shape) for offset in (0, 1, width + 3, width + 4)
    )
    slope_top, slope_bottom = v01 - v00, v11 - v10
    top = v00 + weight_x * slope_top
    vertical = (v10 + weight_x * slope_bottom) - top
    out = tf.transpose(top + weight_y * vertical, (0, 3, 1, 2))
    patches = _rows(x0, y0, image, height + 2, width + 2)
    residuals = (slope_top, slope_bottom, vertical, weight_x, weight_y, slope_x, slope_y, patches)
    return out, residuals


def _bilinear_backward(
    residuals: tuple[tf.Tensor, ...],
    cotangent: tf.Tensor,
    image_shape: tuple[int, int, int],
    padding: str,
    align_corners: bool,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    slope_top, slope_bottom, vertical, weight_x, weight_y, slope_x, slope_y, patches = residuals
    channels, height, width = image_shape
    cot = tf.transpose(cotangent, (0, 2, 3, 1))  # (B, H_out, W_out, C)
    # dL/d(x, y): derivatives of the interpolation times the slopes of the coordinate maps
    d_x = tf.reduce_sum(cot * (slope_top + weight_y * (slope_bottom - slope_top)), axis=-1)
    d_y = tf.reduce_sum(cot * vertical, axis=-1)
    d_grid = tf.stack([d_x * slope_x, d_y * slope_y], axis=-1)
    # dL/dU: one row of 4 C values per point into its 2x2 patch, then the patches onto pixels.
    # After d_grid, so that the interpolation residuals are freed before the scatter's
    # buffers exist: it lowers the peak memory of a tf.function by a third.
    with tf.control_dependencies([d_grid]):
        left, top = 1 - weight_x, 1 - weight_y
    weights = tf.concat([top * left, top * weight_x, weight_y * left, weight_y * weight_x], -1)
    values = weights[..., :, None] * cot[..., None, :]  # (B, H_out, W_out, 4, C)
    d_image = tf.concat(
        [
            _scatter_patches(part_values, part_rows, (height, width, channels))
            for part_values, part_rows in _batch_parts(
                values, patches, cot.shape[0], (height + 2) * (width + 2)
            )
        ],
        axis=0,
    )
    d_fill = _fill_cotangent(cot, d_image, padding)
    return tf.transpose(d_image, (0, 3, 1, 2)), d_grid, d_fill


def _batch_parts(
    values: tf.Tensor, rows: tf.Tensor, batch: int | None, rows_per_image: int
) -> list[tuple[Any, Any]]:
    """``values`` (B, ...) and their flat patch ``rows`` split into parts of whole images.

    TensorFlow's CPU segment sum runs on one thread; independent parts run side
    by side on the inter-op threads (a third faster on 2 cores). Each part's
    rows are made relative to its first image. A batch unknown until run time
    stays whole.
    """
    threads = tf.config.threading.get_inter_op_parallelism_threads() or os.cpu_count() or 1
    count = 1 if batch is None else max(1, min(batch, threads, _MAX_PARTS))
    if batch is None or count == 1:
        return [(values, rows)]
    sizes = [batch // count + (i < batch % count) for i in range(count)]
    parts, first = [], 0
    for part_values, part_rows, size in zip(
        tf.split(values, sizes), tf.split(tf.reshape(rows, (batch, -1)), sizes), sizes, strict=True
    ):
        parts.append((part_values, tf.reshape(part_rows, (-1,)) - first * rows_per_image))
        first += size
    return parts


def _scatter_patches(
    values: tf.Tensor, rows: tf.Tensor, image_shape: tuple[int, int, int]
) -> tf.Tensor:
    """The image cotangent (b, H, W, C): ``values`` (b, H_out, W_out, 4, C) into patches.

    Each point's four values go to its 2x2 patch, each patch's four corners to their pixels.
    """
    height, width, channels = image_shape
    batch = tf.shape(values)[0]
    summed = tf.math.unsorted_segment_sum(
        tf.reshape(values, (-1, 4 * channels)), rows, batch * (height + 2) * (width + 2)
    )
    per_patch = tf.reshape(summed, (batch, height + 2, width + 2, 4, channels))
    return (
        per_patch[:, 1 : height + 1, 1 : width + 1, 0]
        + per_patch[:, 1 : height + 1, :width, 1]
        + per_patch[:, :height, 1 : width + 1, 2]
        + per_patch[:, :height, :width, 3]
    )


def _fill_cotangent(cot: tf.Tensor, d_image: tf.Tensor, padding: str) -> tf.Tensor:
    # channels last here: sum over batch and space, then the core's rule
    total = tf.reduce_sum(cot, axis=(0, 1, 2))
    return fill_cotangent(total, tf.reduce_sum(d_image, axis=(0, 1, 2)), padding, xp)


def _nearest_forward(
    image: tf.Tensor, grid: tf.Tensor, fill: tf.Tensor, padding: str, align_corners: bool
) -> tuple[tf.Tensor, tuple[tf.Tensor, ...]]:
    channels, height, width, out_h, out_w = _static_sizes(image, grid)
    batch = tf.shape(image)[0]
    padded = padded_channels_last(image, fill, xp)
    x, _ = source_pixels(grid[..., 0], width, padding, align_corners, xp)
    y, _ = source_pixels(grid[..., 1], height, padding, align_corners, xp)
    x, y = _materialised([x, y])
    rows = _rows(tf.round(x), tf.round(y), image, height + 3, width + 3)
    out = tf.gather(tf.reshape(padded, (-1, channels)), rows)
    out = tf.transpose(tf.reshape(out, (batch, out_h, out_w, channels)), (0, 3, 1, 2))
    return out, (rows, tf.shape(grid))


def _nearest_backward(
    residuals: tuple[tf.Tensor, ...],
    cotangent: tf.Tensor,
    image_shape: tuple[int, int, int],
    padding: str,
    align_corners: bool,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    rows, grid_shape = residuals
    channels, height, width = image_shape
    cot = tf.transpose(cotangent, (0, 2, 3, 1))
    batch = tf.shape(cot)[0]
    summed = tf.math.unsorted_segment_sum(
        tf.reshape(cot, (-1, channels)), rows, batch * (height + 3) * (width + 3)
    )
    padded = tf.reshape(summed, (batch, height + 3, width + 3, channels))
    d_image = padded[:, 1 : height + 1, 1 : width + 1, :]
    d_fill = _fill_cotangent(cot, d_image, padding)
    d_grid = tf.zeros(grid_shape, dtype=cot.dtype)  # nearest: piecewise constant in the grid
    return tf.transpose(d_image, (0, 3, 1, 2)), d_grid, d_fill


Forward = Callable[..., tuple[tf.Tensor, tuple[tf.Tensor, ...]]]
Backward = Callable[..., tuple[tf.Tensor, tf.Tensor, tf.Tensor]]


class Step:
    """A TF function run op by op on its first eager call per signature, compiled after.

    ``step(*args)`` runs ``function(*args)``: inside a ``tf.function`` (or
    any graph) as the XLA-compiled `compiled`; eagerly, op by op the first
    `EAGER_CALLS` times a signature comes (the shapes, dtypes and devices of
    the tensors in ``args``, and its other values), and through `compiled`
    from then on. Both give the same values to float rounding.

    Parameters
    ----------
    function : callable
        Takes (nested tuples of) tensors and hashable settings.

    Attributes
    ----------
    function : callable
        The step op by op.
    compiled : tf.types.experimental.PolymorphicFunction
        ``function`` as an XLA-compiled ``tf.function``, traced and compiled
        once per signature.

    Examples
    --------
    >>> import tensorflow as tf
    >>> from geowarp.tensorflow._native import Step
    >>> double = Step(lambda x: 2 * x)
    >>> [double.runs_compiled(tf.ones(3)) for _ in range(3)]
    [False, True, True]
    >>> double(tf.ones(2)).numpy().tolist()
    [2.0, 2.0]
    """

    #: Eager calls of one signature that run op by op before it is compiled.
    EAGER_CALLS = 1
    #: Signatures remembered per step (the least recently used are forgotten).
    MAX_SIGNATURES = 256

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.compiled = tf.function(function, autograph=False, jit_compile=True)
        self._calls: OrderedDict[Hashable, int] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        return (self.compiled if self.runs_compiled(*args) else self.function)(*args)

    def runs_compiled(self, *args: Any) -> bool:
        """Whether a call with ``args``, now, runs `compiled` (and count it as a call)."""
        if not tf.executing_eagerly():
            return True
        key = _signature(args)
        with self._lock:
            calls = self._calls.pop(key, 0)
            self._calls[key] = calls + 1
            if len(self._calls) > self.MAX_SIGNATURES:
                self._calls.popitem(last=False)
        return calls >= self.EAGER_CALLS

    def forget(self) -> None:
        """Forget every signature seen: each runs op by op again on its next call."""
        with self._lock:
            self._calls.clear()


def _signature(args: Any) -> Hashable:
    """Shapes, dtypes and devices of the tensors in ``args``; its other values as they are."""
    return tuple(
        (tuple(arg.shape), arg.dtype, arg.device) if isinstance(arg, tf.Tensor) else arg
        for arg in tf.nest.flatten(args)
    )


class Kernel:
    """A sampler as one differentiable TF operation, with the core op's signature and gradients.

    ``kernel(image, grid, fill, *, padding, align_corners)`` as the core's ``op.forward``,
    returning the output only; ``tf.GradientTape`` differentiates it w.r.t. all three arrays.

    Attributes
    ----------
    forward_step, backward_step : Step
        The steps: op by op on a signature's first eager call, XLA-compiled after.
    output_step : Step
        The forward without the residuals, for calls that no gradient tape
        records (inference).
    """

    def __init__(self, forward: Forward, backward: Backward) -> None:
        self.forward, self.backward = forward, backward
        self.forward_step = Step(forward)
        self.backward_step = Step(backward)
        self.output_step = Step(lambda *args: forward(*args)[0])

    def __call__(
        self,
        image: tf.Tensor,
        grid: tf.Tensor,
        fill: tf.Tensor,
        *,
        padding: str,
        align_corners: bool,
    ) -> tf.Tensor:
        image_shape = _static_sizes(image, grid)[:3]
        if not recording():
            with placed_like(image):
                return self.output_step(image, grid, fill, padding, align_corners)

        @tf.custom_gradient
        def apply(image: tf.Tensor, grid: tf.Tensor, fill: tf.Tensor) -> Any:
            out, residuals = self.forward_step(image, grid, fill, padding, align_corners)

            def gradient(cotangent: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
                # traced: the backward's ops join the caller's graph, whose executor
                # frees each residual after its last use (one compiled program
                # holds them all, and peaks higher); eagerly: the backward step
                backward = self.backward_step if tf.executing_eagerly() else self.backward
                return backward(residuals, cotangent, image_shape, padding, align_corners)

            return out, gradient

        with placed_like(image):
            return apply(image, grid, fill)


def recording() -> bool:
    """Whether a gradient tape (or forward accumulator) may record the ops run now.

    Eagerly, and while a ``tf.function`` is traced, this is known when the op
    runs; nothing that does not record can ask for a gradient later. (A
    graph differentiated by ``tf.gradients`` without a tape still gets
    correct gradients: TensorFlow then differentiates the forward program.)
    """
    return bool(record.could_possibly_record())


def placed_like(array: tf.Tensor) -> Any:
    """Eagerly, run where ``array`` is (TF would otherwise pick a GPU for CPU inputs);
    traced, leave placement to the caller's graph."""
    return tf.device(array.device) if tf.executing_eagerly() else contextlib.nullcontext()


bilinear = Kernel(_bilinear_forward, _bilinear_backward)
"""`geowarp.samplers.BILINEAR` on TF tensors."""

nearest = Kernel(_nearest_forward, _nearest_backward)
"""`geowarp.samplers.NEAREST` on TF tensors; zero gradient w.r.t. the grid."""

KERNELS: dict[str, Kernel] = {
    "bilinear_sample": bilinear,
    "nearest_sample": nearest,
}
"""Core op name -> TensorFlow kernel with the op's signature and gradients."""
