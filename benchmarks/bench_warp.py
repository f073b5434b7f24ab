"""Benchmark `geowarp.warp` against its peers (PyTorch, kornia, SciPy) on the CPU.

Run from the repository root::

    python benchmarks/bench_warp.py            # full run, a few minutes on 2 cores
    python benchmarks/bench_warp.py --quick    # smoke test, well under a minute
    python benchmarks/bench_warp.py --repeats 50

Everything runs in one process, float32, with ``torch.set_num_threads`` left at
its default. Within a case the peers are interleaved: every round times each
(peer, forward / forward+backward) pair once, in a rotating order, and the
reported figure is the median over the rounds after the warm-up ones.

How each peer gets the same warp:

* ``gw`` / ``gw portable``: ``gw.warp(image, T, out_shape)`` with
  ``native=True`` (``F.grid_sample``) / ``native=False`` (array-API sampler and
  its explicit VJP). ``T`` is built inside the timed call from the parameter
  leaf: ``Affine(theta)``, ``Projective(H)`` or
  ``ThinPlateSpline.from_landmarks(source_points, control_points)``.
* ``torch`` (the native reference):

  - affine: ``F.affine_grid(theta)`` then ``F.grid_sample``;
  - projective: the homogeneous base grid (H*W, 3) times ``H^T`` by one batched
    matmul, divided by the third coordinate, then ``F.grid_sample``;
  - TPS: the textbook per-item construction: control points expanded to the
    batch, a (B, K+3, K+3) system solved per item, a (B, H*W, K) kernel matrix
    ``U(r^2) = r^2 log r^2`` between output pixels and control points, the grid
    as ``[U, 1, x, y] @ coefficients``, then ``F.grid_sample``.

* ``kornia``: ``warp_affine`` / ``warp_perspective`` get the pixel-frame
  source->destination matrix ``inv(N_in^-1 @ T @ N_out)`` with
  ``align_corners=False``; that matrix is kornia's parameter leaf (converting
  it is outside the timing). TPS, as kornia documents it:
  ``get_tps_transform(control, source)`` then ``warp_image_tps(image, source,
  kernel_weights, affine_weights)``, control points expanded to (B, K, 2). That
  spline also takes control points to source points, but kornia centres its
  kernels on the source points where geowarp (the textbook TPS) centres them on
  the control points, so the two warps agree at the landmarks, not in between.

Each peer's output (and, where the parameters match, its gradients) is compared
with gw's before timing; a peer that raises is reported, with its error in the
JSON checks, and left out of the timing. "fwd" runs on tensors that do not
require grad; "fwd+bwd" makes the image and the peer's parameter leaf require
grad and takes ``torch.autograd.grad`` of ``out.sum()`` w.r.t. both.

NumPy: ``gw.warp`` on float32 arrays beside ``scipy.ndimage.map_coordinates``
(order=1, ``mode="grid-constant"``, ``prefilter=False``) fed precomputed pixel
(row, col) coordinates, looping over batch*channels; ``gw.sample`` with a
precomputed grid is an extra row, the like-for-like match of that. With the
``numba`` extra installed, geowarp runs its compiled sampler loops, waited for
before the numpy cases (a process loads them in the background).

TensorFlow (W1, W2; skipped with a note when TF is not installed):
``gw.warp`` on TF tensors (image (B, C, H, W)) beside
``tf.raw_ops.ImageProjectiveTransformV3`` (forward; the pixel-frame matrix as
its 8 parameters) and `tf_gather_sampler`, the classic gather-based STN
sampler differentiated by TF's own autodiff (image (B, H, W, C)), each eager,
in ``tf.function`` and in ``tf.function(jit_compile=True)``, timed in the same
interleaved rounds as torch's ``affine_grid`` + ``grid_sample``; peak memory of
one fwd+bwd per peer and mode is measured in fresh processes
(`measure_tf_memory`). ``--tensorflow-only`` runs just these rows and writes
``bench_warp.tensorflow.*``.

Results go to ``benchmarks/results/bench_warp.{json,md}`` (``--quick`` writes
``bench_warp.quick.*`` instead, which git ignores).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kornia
import numpy as np
import scipy
import scipy.ndimage
import torch
import torch.nn.functional as F
from _timing import Timing, time_interleaved
from kornia.geometry.transform import (
    get_tps_transform,
    warp_affine,
    warp_image_tps,
    warp_perspective,
)

import geowarp as gw
from geowarp.grid import normalized_to_pixel_matrix, pixel_to_normalized_matrix
from geowarp.samplers import _compiled

RESULTS_DIR = Path(__file__).resolve().parent / "results"
FWD, FWD_BWD = "fwd", "fwd+bwd"
GW, GW_PORTABLE, TORCH, KORNIA = "gw", "gw portable", "torch", "kornia"


# --------------------------------------------------------------------------- cases and inputs


@dataclass(frozen=True)
class Case:
    """One warp workload: a transform family at an image batch size."""

    name: str
    kind: str  # "affine" | "projective" | "tps"
    batch: int
    channels: int
    height: int
    width: int
    control_grid: int = 4  # TPS only: control points on a control_grid x control_grid lattice

    @property
    def image_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.channels, self.height, self.width)

    @property
    def out_shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def describe(self) -> str:
        extra = f", {self.control_grid**2} control points" if self.kind == "tps" else ""
        b, c, h, w = self.image_shape
        return f"{self.name}: {self.kind} {b}x{c}x{h}x{w}{extra}"


CASES = (
    Case("W1", "affine", 256, 1, 28, 28),
    Case("W2", "affine", 8, 3, 256, 256),
    Case("P2", "projective", 8, 3, 256, 256),
    Case("TPS", "tps", 8, 3, 256, 256),
)


@dataclass(frozen=True)
class Inputs:
    """The same warp for everyone: float32 image, geowarp parameters, TPS control points."""

    image: np.ndarray  # (B, C, H, W)
    params: np.ndarray  # theta (B, 2, 3) | H (B, 3, 3) | TPS source points (B, K, 2)
    control: np.ndarray | None = None  # TPS target points (K, 2), shared by the batch


def make_inputs(case: Case, seed: int = 0) -> Inputs:
    """A smooth random image and a random, moderate warp of the case's family."""
    rng = np.random.default_rng(seed)
    image = _smooth_image(case, rng)
    if case.kind == "tps":
        ticks = np.linspace(-0.75, 0.75, case.control_grid)
        control = np.stack(np.meshgrid(ticks, ticks, indexing="xy"), axis=-1).reshape(-1, 2)
        source = control + rng.uniform(-0.1, 0.1, (case.batch, *control.shape))
        return Inputs(image, source.astype(np.float32), control.astype(np.float32))
    angle = rng.uniform(-0.4, 0.4, case.batch)
    scale = rng.uniform(0.8, 1.2, case.batch)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    shift = rng.uniform(-0.2, 0.2, (case.batch, 2))
    theta = np.stack(
        [np.stack([cos, -sin, shift[:, 0]], -1), np.stack([sin, cos, shift[:, 1]], -1)], 1
    )
    if case.kind == "affine":
        return Inputs(image, theta.astype(np.float32))
    last = np.concatenate(
        [rng.uniform(-0.15, 0.15, (case.batch, 1, 2)), np.ones((case.batch, 1, 1))], -1
    )
    return Inputs(image, np.concatenate([theta, last], axis=1).astype(np.float32))


def _smooth_image(case: Case, rng: np.random.Generator) -> np.ndarray:
    b, c, h, w = case.image_shape
    ys, xs = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    freq = rng.uniform(1.0, 6.0, (b, c, 1, 1))
    phase = rng.uniform(0, np.pi, (b, c, 1, 1))
    image = 0.5 + 0.25 * np.sin(freq * (xs + 2 * ys) * np.pi + phase)
    image += 0.1 * rng.standard_normal((b, c, h, w))
    return image.astype(np.float32)


def pixel_matrix(
    theta: np.ndarray, in_shape: tuple[int, int], out_shape: tuple[int, int]
) -> np.ndarray:
    """geowarp's normalized dst->src matrix as the pixel-frame dst->src ``N_in^-1 @ T @ N_out``."""
    to_pixel = np.array(normalized_to_pixel_matrix(in_shape))
    to_normalized = np.array(pixel_to_normalized_matrix(out_shape))
    t = theta.astype(np.float64)
    if t.shape[-2] == 2:
        t = np.concatenate([t, np.broadcast_to([[[0.0, 0.0, 1.0]]], (t.shape[0], 1, 3))], axis=1)
    return to_pixel @ t @ to_normalized


# --------------------------------------------------------------------------- torch peers

WarpFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Peer:
    """A warp implementation with its own parameter leaf (same warp, its own convention)."""

    name: str
    warp: WarpFn  # (image, params) -> out
    params: np.ndarray
    same_params_as_gw: bool  # whether its parameter gradient is comparable with geowarp's


def _base_points(shape: tuple[int, int], like: torch.Tensor) -> torch.Tensor:
    """Homogeneous normalized pixel centres (H*W, 3), align_corners=False, as affine_grid's."""
    h, w = shape
    xs = (torch.arange(w, dtype=like.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, dtype=like.dtype) * 2 + 1) / h - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1).reshape(-1, 3)


def torch_affine(image: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, align_corners=False)


def torch_projective(image: torch.Tensor, h_matrix: torch.Tensor) -> torch.Tensor:
    b, _, h, w = image.shape
    homogeneous = _base_points((h, w), image) @ h_matrix.transpose(1, 2)  # (B, HW, 3)
    grid = homogeneous[..., :2] / homogeneous[..., 2:]
    return F.grid_sample(image, grid.reshape(b, h, w, 2), align_corners=False)


def _tps_kernel(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``U(r^2) = r^2 log r^2`` between (B, N, 2) points and (B, K, 2) centres: (B, N, K)."""
    r2 = (points[:, :, None, :] - centres[:, None, :, :]).square().sum(-1)
    positive = r2 > 0
    return torch.where(positive, r2 * torch.log(torch.where(positive, r2, 1.0)), 0.0)


def torch_tps(image: torch.Tensor, source: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
    b, _, h, w = image.shape
    k = control.shape[0]
    centres = control.expand(b, k, 2)
    ones = torch.ones(b, k, 1, dtype=image.dtype)
    basis_c = torch.cat([ones, centres], dim=-1)  # (B, K, 3)
    top = torch.cat([_tps_kernel(centres, centres), basis_c], dim=-1)
    bottom = torch.cat([basis_c.transpose(1, 2), torch.zeros(b, 3, 3, dtype=image.dtype)], dim=-1)
    rhs = torch.cat([source, torch.zeros(b, 3, 2, dtype=image.dtype)], dim=1)
    coefficients = torch.linalg.solve(torch.cat([top, bottom], dim=1), rhs)  # (B, K + 3, 2)
    points = _base_points((h, w), image).expand(b, h * w, 3)  # (x, y, 1)
    kernel = _tps_kernel(points[..., :2], centres)  # (B, HW, K): one per batch item
    affine = coefficients[:, [k + 1, k + 2, k], :]  # rows (1, x, y) reordered to (x, y, 1)
    grid = kernel @ coefficients[:, :k] + points @ affine
    return F.grid_sample(image, grid.reshape(b, h, w, 2), align_corners=False)


def gw_warp(case: Case, control: torch.Tensor | None, native: bool) -> WarpFn:
    def warp(image: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        if case.kind == "affine":
            transform: gw.Transform = gw.Affine(params)
        elif case.kind == "projective":
            transform = gw.Projective(params)
        else:
            transform = gw.ThinPlateSpline.from_landmarks(params, control)
        return gw.warp(image, transform, case.out_shape, native=native)

    return warp


def kornia_warp(case: Case, control: torch.Tensor | None) -> WarpFn:
    def affine(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        return warp_affine(image, matrix, case.out_shape, align_corners=False)

    def projective(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        return warp_perspective(image, matrix, case.out_shape, align_corners=False)

    def tps(image: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        # kornia's documented composition: the spline interpolates control -> source, but
        # its kernels sit on the source points (geowarp's, the textbook TPS's, on the
        # control points), so the two splines agree at the landmarks only.
        assert control is not None
        target = control.expand(source.shape[0], *control.shape)
        kernel_weights, affine_weights = get_tps_transform(target, source)
        return warp_image_tps(image, source, kernel_weights, affine_weights, align_corners=False)

    return {"affine": affine, "projective": projective, "tps": tps}[case.kind]


def torch_peers(case: Case, inputs: Inputs) -> list[Peer]:
    """The four implementations compared on ``case``, each with its parameter array."""
    control = None if inputs.control is None else torch.from_numpy(inputs.control)
    if case.kind == "tps":
        reference: WarpFn = functools.partial(torch_tps, control=control)
        kornia_params = inputs.params
    else:
        reference = torch_affine if case.kind == "affine" else torch_projective
        forward = np.linalg.inv(pixel_matrix(inputs.params, case.out_shape, case.out_shape))
        rows = 2 if case.kind == "affine" else 3
        kornia_params = forward[:, :rows, :].astype(np.float32)
    return [
        Peer(GW, gw_warp(case, control, native=True), inputs.params, True),
        Peer(GW_PORTABLE, gw_warp(case, control, native=False), inputs.params, True),
        Peer(TORCH, reference, inputs.params, True),
        Peer(KORNIA, kornia_warp(case, control), kornia_params, False),
    ]


# --------------------------------------------------------------------------- timing


def _forward_call(peer: Peer, image: np.ndarray) -> Callable[[], object]:
    image_t, params_t = torch.from_numpy(image), torch.from_numpy(peer.params)
    return lambda: peer.warp(image_t, params_t)


def _forward_backward_call(peer: Peer, image: np.ndarray) -> Callable[[], object]:
    image_t = torch.from_numpy(image).requires_grad_(True)
    params_t = torch.from_numpy(peer.params).requires_grad_(True)

    def run() -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(peer.warp(image_t, params_t).sum(), (image_t, params_t))

    return run


# --------------------------------------------------------------------------- checks


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = float(b.detach().double().abs().max())
    return _max_abs(a, b) / scale if scale else _max_abs(a, b)


def _run_with_grads(peer: Peer, image: np.ndarray) -> tuple[torch.Tensor, ...]:
    image_t = torch.from_numpy(image).requires_grad_(True)
    params_t = torch.from_numpy(peer.params).requires_grad_(True)
    out = peer.warp(image_t, params_t)
    return (out, *torch.autograd.grad(out.sum(), (image_t, params_t)))


def check_torch_case(peers: list[Peer], image: np.ndarray) -> dict[str, dict[str, Any]]:
    """Max abs output difference of every peer from gw; gradient differences where comparable.

    A peer whose forward or backward raises gets an ``error`` entry for that mode
    instead, and is left out of the timing of that mode.
    """
    checks: dict[str, dict[str, Any]] = {peer.name: {} for peer in peers}
    forward: dict[str, torch.Tensor] = {}
    grads: dict[str, tuple[torch.Tensor, ...]] = {}
    for peer in peers:
        try:
            forward[peer.name] = peer.warp(torch.from_numpy(image), torch.from_numpy(peer.params))
        except Exception as error:  # report, don't stop the benchmark
            checks[peer.name][f"{FWD} error"] = f"{type(error).__name__}: {error}"
        try:
            grads[peer.name] = _run_with_grads(peer, image)
        except Exception as error:
            checks[peer.name][f"{FWD_BWD} error"] = f"{type(error).__name__}: {error}"
    if GW not in forward:
        return checks
    for peer in peers[1:]:
        check = checks[peer.name]
        if peer.name in forward:
            check["out_max_abs"] = _max_abs(forward[peer.name], forward[GW])
        if peer.name in grads and GW in grads:
            check["d_image_max_abs"] = _max_abs(grads[peer.name][1], grads[GW][1])
            if peer.same_params_as_gw:
                check["d_params_max_rel"] = _relative(grads[peer.name][2], grads[GW][2])
    return checks


# --------------------------------------------------------------------------- numpy / scipy


def scipy_coordinates(
    theta: np.ndarray, in_shape: tuple[int, int], out_shape: tuple[int, int]
) -> np.ndarray:
    """Pixel (row, col) sampling coordinates (B, 2, H_out, W_out), float64, of the affine warp."""
    matrix = pixel_matrix(theta, in_shape, out_shape)  # (B, 3, 3) pixel dst -> src, (x, y)
    rows, cols = np.meshgrid(np.arange(out_shape[0]), np.arange(out_shape[1]), indexing="ij")
    points = np.stack([cols, rows, np.ones_like(rows)], axis=0).reshape(3, -1).astype(np.float64)
    mapped = matrix[:, :2, :] @ points  # (B, 2, HW): (x, y)
    return mapped[:, ::-1, :].reshape(theta.shape[0], 2, *out_shape).copy()


def scipy_warp(image: np.ndarray, coordinates: np.ndarray, out: np.ndarray) -> np.ndarray:
    for b in range(image.shape[0]):
        for c in range(image.shape[1]):
            scipy.ndimage.map_coordinates(
                image[b, c],
                coordinates[b],
                output=out[b, c],
                order=1,
                mode="grid-constant",
                cval=0.0,
                prefilter=False,
            )
    return out


def bench_numpy_case(
    case: Case, repeats: int, warmup: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Forward medians (ms) of gw.warp, gw.sample (precomputed grid) and SciPy on numpy."""
    inputs = make_inputs(case)
    image, theta = inputs.image, inputs.params
    transform = gw.Affine(theta)
    grid = transform.sampling_grid(case.out_shape).astype(np.float32)
    coordinates = scipy_coordinates(theta, case.out_shape, case.out_shape)
    out = np.empty(case.image_shape, dtype=np.float32)
    fns: dict[str, Callable[[], object]] = {
        "gw numpy": lambda: gw.warp(image, gw.Affine(theta), case.out_shape),
        "gw.sample numpy (grid given)": lambda: gw.sample(image, grid),
        "scipy": lambda: scipy_warp(image, coordinates, out),
    }
    reference = gw.warp(image, transform, case.out_shape)
    on_torch = gw.warp(torch.from_numpy(image), gw.Affine(torch.from_numpy(theta)), case.out_shape)
    checks = {
        "gw numpy is float32": float(reference.dtype == np.float32),
        "scipy out_max_abs": float(np.abs(scipy_warp(image, coordinates, out) - reference).max()),
        "gw torch out_max_abs": float(np.abs(on_torch.numpy() - reference).max()),
    }
    timings = time_interleaved(fns, repeats, warmup)
    return {name: timing.median for name, timing in timings.items()}, checks


# --------------------------------------------------------------------------- TensorFlow

TF_MODES = ("eager", "function", "xla")
TF_GW, TF_GATHER, TF_IPT = "gw tf", "tf gather", "tf ImageProjectiveTransformV3"


def tensorflow_available() -> bool:
    """Whether TensorFlow is installed (the TF rows are skipped, with a note, otherwise)."""
    return importlib.util.find_spec("tensorflow") is not None


def tf_gather_sampler(image: Any, theta: Any) -> Any:
    """The classic STN sampler in TensorFlow, differentiated by TF's own autodiff.

    As the widely copied implementations do it (an affine grid by one batched
    matmul, four ``tf.gather_nd`` of the corner pixels, bilinear weights),
    with zero padding by a padded image and clamped coordinates so that it is
    the same warp as geowarp's. ``image`` is (B, H, W, C), ``theta`` (B, 2, 3).
    """
    import tensorflow as tf

    batch, height, width = tf.shape(image)[0], image.shape[1], image.shape[2]
    xs = (tf.range(width, dtype=image.dtype) * 2 + 1) / width - 1
    ys = (tf.range(height, dtype=image.dtype) * 2 + 1) / height - 1
    grid_y, grid_x = tf.meshgrid(ys, xs, indexing="ij")
    points = tf.reshape(tf.stack([grid_x, grid_y, tf.ones_like(grid_x)], -1), (1, -1, 3))
    grid = tf.matmul(tf.tile(points, (batch, 1, 1)), theta, transpose_b=True)  # (B, HW, 2)
    x = tf.clip_by_value((grid[..., 0] + 1) * (width / 2) - 0.5, -1.0, float(width))
    y = tf.clip_by_value((grid[..., 1] + 1) * (height / 2) - 0.5, -1.0, float(height))
    padded = tf.pad(image, [[0, 0], [1, 2], [1, 2], [0, 0]])
    x0, y0 = tf.floor(x), tf.floor(y)
    column, row = tf.cast(x0, tf.int32) + 1, tf.cast(y0, tf.int32) + 1
    item = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(column))

    def pixel(dy: int, dx: int) -> Any:
        return tf.gather_nd(padded, tf.stack([item, row + dy, column + dx], axis=-1))

    wx, wy = (x - x0)[..., None], (y - y0)[..., None]
    out = tf.add_n(
        [
            (1 - wx) * (1 - wy) * pixel(0, 0),
            wx * (1 - wy) * pixel(0, 1),
            (1 - wx) * wy * pixel(1, 0),
            wx * wy * pixel(1, 1),
        ]
    )
    return tf.reshape(out, (batch, height, width, image.shape[3]))


def tf_ipt_parameters(theta: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``ImageProjectiveTransformV3``'s 8 numbers: the pixel-frame dst -> src matrix."""
    matrix = pixel_matrix(theta, shape, shape)
    matrix = matrix / matrix[:, 2:3, 2:3]
    return matrix.reshape(-1, 9)[:, :8].astype(np.float32)


def _tf_fwd_bwd(warp: Callable[..., Any]) -> Callable[..., Any]:
    import tensorflow as tf

    def run(image: Any, params: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch([image, params])
            loss = tf.reduce_sum(warp(image, params))
        return tape.gradient(loss, [image, params])

    return run


def _tf_compiled(function: Callable[..., Any], mode: str) -> Callable[..., Any]:
    import tensorflow as tf

    if mode == "eager":
        return function
    return tf.function(function, jit_compile=mode == "xla")


def tf_calls(case: Case, inputs: Inputs) -> dict[str, Callable[[], object]]:
    """``"peer|step|mode"`` -> a timed call, TF peers and the torch reference of one run."""
    import tensorflow as tf

    image_nchw = tf.constant(inputs.image)
    image_nhwc = tf.constant(inputs.image.transpose(0, 2, 3, 1))
    theta = tf.constant(inputs.params)
    ipt_parameters = tf.constant(tf_ipt_parameters(inputs.params, case.out_shape))

    def gw_tf(image: Any, theta: Any) -> Any:
        return gw.warp(image, gw.Affine(theta), case.out_shape)

    def ipt(image: Any) -> Any:
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=image,
            transforms=ipt_parameters,
            output_shape=list(case.out_shape),
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )

    calls: dict[str, Callable[[], object]] = {}
    for mode in TF_MODES:
        for name, warp, image in (
            (TF_GW, gw_tf, image_nchw),
            (TF_GATHER, tf_gather_sampler, image_nhwc),
        ):
            forward = _tf_compiled(warp, mode)
            both = _tf_compiled(_tf_fwd_bwd(warp), mode)
            calls[f"{name}|{FWD}|{mode}"] = functools.partial(forward, image, theta)
            calls[f"{name}|{FWD_BWD}|{mode}"] = functools.partial(both, image, theta)
    calls[f"{TF_IPT}|{FWD}|eager"] = functools.partial(ipt, image_nhwc)
    calls[f"{TF_IPT}|{FWD}|function"] = functools.partial(tf.function(ipt), image_nhwc)
    reference = Peer(TORCH, torch_affine, inputs.params, True)
    calls[f"{TORCH}|{FWD}|-"] = _forward_call(reference, inputs.image)
    calls[f"{TORCH}|{FWD_BWD}|-"] = _forward_backward_call(reference, inputs.image)
    return calls


def check_tf_case(case: Case, inputs: Inputs) -> dict[str, float]:
    """Every TF peer against geowarp on TF (and geowarp on TF against torch): same warp."""
    import tensorflow as tf

    image_nchw, theta = tf.constant(inputs.image), tf.constant(inputs.params)
    image_nhwc = tf.constant(inputs.image.transpose(0, 2, 3, 1))
    out = gw.warp(image_nchw, gw.Affine(theta), case.out_shape).numpy().transpose(0, 2, 3, 1)
    d_image, d_theta = _tf_fwd_bwd(lambda i, t: gw.warp(i, gw.Affine(t), case.out_shape))(
        image_nchw, theta
    )
    g_image, g_theta = _tf_fwd_bwd(tf_gather_sampler)(image_nhwc, theta)
    calls = tf_calls(case, inputs)
    on_torch = torch_affine(torch.from_numpy(inputs.image), torch.from_numpy(inputs.params))
    scale = float(np.abs(g_theta.numpy()).max())
    return {
        "gather out_max_abs": float(
            np.abs(tf_gather_sampler(image_nhwc, theta).numpy() - out).max()
        ),
        "ipt out_max_abs": float(np.abs(calls[f"{TF_IPT}|{FWD}|eager"]().numpy() - out).max()),
        "torch out_max_abs": float(np.abs(on_torch.numpy().transpose(0, 2, 3, 1) - out).max()),
        "gather d_image_max_abs": float(
            np.abs(g_image.numpy().transpose(0, 3, 1, 2) - d_image.numpy()).max()
        ),
        "gather d_theta_max_rel": float(np.abs(g_theta.numpy() - d_theta.numpy()).max()) / scale,
    }


TF_MEMORY_PROBE = """
import json, sys
sys.path.insert(0, {directory!r})
import bench_warp as bench
print(json.dumps(bench.{function}({case!r}, {peers!r})))
"""


def tf_peak_memory(case_name: str, peers: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Peak bytes TF allocates during one fwd+bwd beyond what it held before, eager and
    ``tf.function``, per peer.

    Runs in a process started with ``TF_CPU_ALLOCATOR_USE_BFC=true``, whose CPU
    allocator keeps the statistics ``tf.config.experimental.get_memory_info`` reads.
    """
    import tensorflow as tf

    case = next(c for c in CASES if c.name == case_name)
    calls = tf_calls(case, make_inputs(case))
    peaks: dict[str, dict[str, float]] = {}
    for name in peers:
        for mode in ("eager", "function"):
            call = calls[f"{name}|{FWD_BWD}|{mode}"]
            call()  # trace and warm up outside the measurement
            before = tf.config.experimental.get_memory_info("CPU:0")["current"]
            tf.config.experimental.reset_memory_stats("CPU:0")
            call()
            peak = tf.config.experimental.get_memory_info("CPU:0")["peak"] - before
            peaks.setdefault(name, {})[mode] = float(peak)
    return peaks


def tf_xla_memory(case_name: str, peers: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Bytes XLA assigns to one compiled fwd+bwd (temporaries and outputs, not the inputs).

    The BFC allocator's statistics are too coarse here: XLA asks for one block
    of temporaries, which BFC serves with a whole chunk of its region (128 MiB
    for both peers at W2). XLA's own buffer assignment, dumped by the process
    (``XLA_FLAGS=--xla_dump_to``), gives the exact figure.
    """
    case = next(c for c in CASES if c.name == case_name)
    (name,) = peers
    tf_calls(case, make_inputs(case))[f"{name}|{FWD_BWD}|xla"]()
    directory = Path(os.environ["XLA_FLAGS"].split("--xla_dump_to=")[1].split()[0])
    sizes = []
    for path in directory.glob("*buffer-assignment.txt"):
        total = 0
        for line in path.read_text().splitlines():
            if line.startswith("allocation ") and "parameter" not in line:
                total += int(line.split("size ")[1].split(",")[0])
        sizes.append(total)
    return {name: {"xla": float(max(sizes))}}


def _probe(function: str, case: Case, peers: tuple[str, ...], env: dict[str, str]) -> Any:
    code = TF_MEMORY_PROBE.format(
        directory=str(Path(__file__).resolve().parent),
        function=function,
        case=case.name,
        peers=peers,
    )
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment
    )
    if result.returncode != 0:
        print(f"  TF memory probe {function} failed: {result.stderr[-2000:]}")
        return {}
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_tf_memory(case: Case) -> dict[str, dict[str, float]]:
    """Peak memory of one fwd+bwd per TF peer and mode, each probe in a fresh process."""
    peers = (TF_GW, TF_GATHER)
    peaks: dict[str, dict[str, float]] = {name: {} for name in peers}
    for name, modes in _probe(
        "tf_peak_memory", case, peers, {"TF_CPU_ALLOCATOR_USE_BFC": "true"}
    ).items():
        peaks[name].update(modes)
    for name in peers:
        with tempfile.TemporaryDirectory() as directory:
            flags = f"--xla_dump_to={directory} --xla_dump_hlo_as_text"
            found = _probe("tf_xla_memory", case, (name,), {"XLA_FLAGS": flags})
        for key, modes in found.items():
            peaks[key].update(modes)
    return peaks


def bench_tf_case(case: Case, repeats: int, warmup: int, report: Report) -> None:
    """Check, time (interleaved with torch's affine_grid + grid_sample) and measure memory."""
    inputs = make_inputs(case)
    checks = check_tf_case(case, inputs)
    print("  check TF " + ", ".join(f"{key}={value:.2e}" for key, value in checks.items()))
    timings = time_interleaved(tf_calls(case, inputs), repeats, warmup)
    nested: dict[str, dict[str, dict[str, float]]] = {}
    minima: dict[str, dict[str, dict[str, float]]] = {}
    for key, timing in timings.items():
        name, step, mode = key.split("|")
        nested.setdefault(name, {}).setdefault(step, {})[mode] = timing.median
        minima.setdefault(name, {}).setdefault(step, {})[mode] = timing.minimum
    report.tensorflow[case.name] = {
        "ms": nested,
        "min_ms": minima,
        "peak_bytes": measure_tf_memory(case),
        "checks": checks,
    }


def tensorflow_ratios(results: dict[str, Any]) -> dict[str, float]:
    """The TF goals of the project: fwd+bwd vs the gather sampler (each mode) and vs torch
    (best mode), peak memory vs the gather sampler, forward vs ImageProjectiveTransformV3."""
    ratios: dict[str, float] = {}
    for name, result in results.items():
        ms, peaks = result["ms"], result["peak_bytes"]
        gw_both, gather_both = ms[TF_GW][FWD_BWD], ms[TF_GATHER][FWD_BWD]
        for mode in TF_MODES:
            ratios[f"TF {name} fwd+bwd gw/gather ({mode})"] = gw_both[mode] / gather_both[mode]
        best = min(TF_MODES, key=lambda mode: gw_both[mode])
        ratios[f"TF {name} fwd+bwd gw ({best}, best)/torch"] = (
            gw_both[best] / ms[TORCH][FWD_BWD]["-"]
        )
        for mode in TF_MODES:
            if mode in peaks.get(TF_GW, {}) and mode in peaks.get(TF_GATHER, {}):
                ratios[f"TF {name} fwd+bwd peak memory gw/gather ({mode})"] = (
                    peaks[TF_GW][mode] / peaks[TF_GATHER][mode]
                )
        ipt = min(ms[TF_IPT][FWD].values())
        for mode in TF_MODES:
            ratios[f"TF {name} fwd gw ({mode})/ImageProjectiveTransformV3"] = (
                ms[TF_GW][FWD][mode] / ipt
            )
    return ratios


TF_GOALS = {"peak memory": 1.0, "gw/gather": 0.8, "/torch": 2.5, "ImageProjective": 1.0}


def tf_goal(ratio_name: str) -> float | None:
    """The project's bound on a TF ratio (None for a ratio without one); first match wins."""
    return next((bound for key, bound in TF_GOALS.items() if key in ratio_name), None)


def tensorflow_markdown(results: dict[str, Any], ratios: dict[str, float]) -> str:
    """The TF section of the report: times per peer, step and mode; peak memory; goals."""
    if not results:
        return "\n## TensorFlow\n\nSkipped: TensorFlow is not installed.\n"
    lines = [
        "",
        "## TensorFlow (ms; image (B, C, H, W) for gw, (B, H, W, C) for the TF peers)",
        "",
        "| case | peer | step | eager | tf.function | tf.function(jit_compile=True) |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for peer, steps in result["ms"].items():
            for step, modes in steps.items():
                cells = [f"{modes[m]:.2f}" if m in modes else "-" for m in TF_MODES]
                if "-" in modes:  # torch, one mode
                    cells = [f"{modes['-']:.2f} (torch)", "", ""]
                lines.append(f"| {name} | {peer} | {step} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Peak memory of one fwd+bwd (MB): TF's BFC allocator statistics for eager and "
        "tf.function, XLA's buffer assignment (temporaries and outputs) under jit_compile.",
        "",
        "| case | peer | eager | tf.function | XLA |",
        "|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for peer, modes in result["peak_bytes"].items():
            cells = " | ".join(f"{modes[m] / 2**20:.1f}" if m in modes else "-" for m in TF_MODES)
            lines.append(f"| {name} | {peer} | {cells} |")
    lines += ["", "| TF ratio | value | goal | met |", "|---|---|---|---|"]
    for key, value in ratios.items():
        bound = tf_goal(key)
        met = "-" if bound is None else ("yes" if value <= bound else "no")
        lines.append(f"| {key} | {value:.2f} | <= {bound} | {met} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- report


@dataclass
class Report:
    """Everything one run measured."""

    meta: dict[str, Any]
    torch_ms: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # case/peer/mode
    torch_min_ms: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    numpy_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # case/peer
    checks: dict[str, Any] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    tensorflow: dict[str, Any] = field(default_factory=dict)  # case -> ms, peak_bytes, checks

    def as_json(self) -> dict[str, Any]:
        return _json_safe(
            {
                "meta": self.meta,
                "torch_ms": self.torch_ms,
                "torch_min_ms": self.torch_min_ms,
                "numpy_ms": self.numpy_ms,
                "ratios": self.ratios,
                "checks": self.checks,
                "tensorflow": self.tensorflow,
            }
        )


def _json_safe(value: Any) -> Any:
    """NaN (a failed measurement) as null, so the file stays strict JSON."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def git_revision() -> str | None:
    """The checked-out commit, with ``+dirty`` when the tree has changes (None without git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        run = functools.partial(
            subprocess.run, cwd=root, capture_output=True, text=True, check=True
        )
        commit = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def machine_info(repeats: int, warmup: int, quick: bool) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "kornia": kornia.__version__,
        "geowarp": gw.__version__,
        "geowarp_git": git_revision(),
        "dtype": "float32",
        "repeats": repeats,
        "warmup": warmup,
        "quick": quick,
        "cases": [case.describe() for case in CASES],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "thread_env": {
            key: os.environ.get(key)
            for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")
        },
    }


def compute_ratios(report: Report) -> dict[str, float]:
    """The ratios the project tracks (first), then the other peer ratios for reference."""
    t, n = report.torch_ms, report.numpy_ms
    ratios: dict[str, float] = {}
    for name in ("W1", "W2"):
        for mode in (FWD, FWD_BWD):
            ratios[f"{name} affine {mode} gw/native"] = t[name][GW][mode] / t[name][TORCH][mode]
    for name in ("W1", "W2", "P2", "TPS"):
        for mode in (FWD, FWD_BWD):
            ratios[f"{name} {mode} gw/kornia"] = t[name][GW][mode] / t[name][KORNIA][mode]
    ratios["TPS fwd+bwd gw / W2 affine fwd+bwd gw"] = t["TPS"][GW][FWD_BWD] / t["W2"][GW][FWD_BWD]
    for name in ("W1", "W2"):
        ratios[f"numpy {name} fwd gw/scipy"] = n[name]["gw numpy"] / n[name]["scipy"]
    # extras, not tracked
    for name in ("P2", "TPS"):
        for mode in (FWD, FWD_BWD):
            ratios[f"{name} {mode} gw/native"] = t[name][GW][mode] / t[name][TORCH][mode]
    for name in ("W1", "W2", "P2", "TPS"):
        for mode in (FWD, FWD_BWD):
            ratios[f"{name} {mode} gw portable/gw"] = t[name][GW_PORTABLE][mode] / t[name][GW][mode]
    return ratios


def markdown(report: Report) -> str:
    meta = report.meta
    lines = [
        "# bench_warp",
        "",
        f"{meta['date']}; geowarp {meta['geowarp_git']}; torch {meta['torch']} "
        f"({meta['torch_threads']} threads), numpy "
        f"{meta['numpy']} (compiled sampler loops: {meta.get('numpy_compiled_loops', '-')}), "
        f"scipy {meta['scipy']}, kornia {meta['kornia']}; {meta['cpu_count']} "
        f"CPU cores ({meta['processor']}); float32; median of {meta['repeats']} interleaved "
        f"rounds after {meta['warmup']} warm-up; load average {meta['load_average_at_start']} "
        f"at start, {meta.get('load_average_at_end')} at end (other processes share the cores: "
        f"minima are in the JSON).",
        "",
        "## PyTorch (ms)",
        "",
        "| case | peer | fwd | fwd+bwd | max abs out diff vs gw |",
        "|---|---|---|---|---|",
    ]
    for case in CASES:
        for peer, times in report.torch_ms[case.name].items():
            diff = report.checks[case.name].get(peer, {}).get("out_max_abs")
            diff_text = "-" if diff is None else f"{diff:.2e}"
            lines.append(
                f"| {case.describe()} | {peer} | {times[FWD]:.2f} | "
                f"{times[FWD_BWD]:.2f} | {diff_text} |"
            )
    lines += ["", "## NumPy forward (ms)", "", "| case | peer | fwd |", "|---|---|---|"]
    for name, times in report.numpy_ms.items():
        lines += [f"| {name} | {peer} | {ms:.2f} |" for peer, ms in times.items()]
    lines += ["", "## Ratios (lower is better for geowarp)", "", "| ratio | value |", "|---|---|"]
    lines += [f"| {key} | {value:.2f} |" for key, value in report.ratios.items()]
    tf_ratios = {key: value for key, value in report.ratios.items() if key.startswith("TF ")}
    return "\n".join(lines) + "\n" + tensorflow_markdown(report.tensorflow, tf_ratios)


def print_tables(report: Report) -> None:
    print(f"\n{'case':<6} {'peer':<13} {'fwd ms':>9} {'fwd+bwd ms':>11}")
    for name, peers in report.torch_ms.items():
        for peer, times in peers.items():
            print(f"{name:<6} {peer:<13} {times[FWD]:>9.2f} {times[FWD_BWD]:>11.2f}")
    print(f"\n{'case':<6} {'numpy peer':<30} {'fwd ms':>9}")
    for name, peers in report.numpy_ms.items():
        for peer, ms in peers.items():
            print(f"{name:<6} {peer:<30} {ms:>9.2f}")
    print("\nratios")
    for key, value in report.ratios.items():
        print(f"  {key:<40} {value:6.2f}")


# --------------------------------------------------------------------------- main


def bench_torch_case(case: Case, repeats: int, warmup: int, report: Report) -> None:
    """Check, then time, every peer on ``case``; record medians, minima and checks."""
    inputs = make_inputs(case)
    peers = torch_peers(case, inputs)
    checks = check_torch_case(peers, inputs.image)
    for peer, check in checks.items():
        if not check:
            continue
        text = ", ".join(f"{key}={_fmt(value)}" for key, value in check.items())
        print(f"  check {peer:<12} vs gw: {text}")
    calls = {FWD: _forward_call, FWD_BWD: _forward_backward_call}
    fns = {
        f"{peer.name}|{mode}": make(peer, inputs.image)
        for peer in peers
        for mode, make in calls.items()
        if f"{mode} error" not in checks[peer.name]
    }
    timings = time_interleaved(fns, repeats, warmup)
    failed = Timing(math.nan, math.nan)
    found = {
        peer.name: {mode: timings.get(f"{peer.name}|{mode}", failed) for mode in calls}
        for peer in peers
    }
    report.torch_ms[case.name] = {
        peer: {mode: t.median for mode, t in modes.items()} for peer, modes in found.items()
    }
    report.torch_min_ms[case.name] = {
        peer: {mode: t.minimum for mode, t in modes.items()} for peer, modes in found.items()
    }
    report.checks[case.name] = checks


def _fmt(value: Any) -> str:
    return f"{value:.2e}" if isinstance(value, float) else str(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny repeats: a smoke test")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds per case")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--tensorflow-only",
        action="store_true",
        help="only the TensorFlow rows (W1, W2), written to bench_warp.tensorflow.*",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Report:
    args = parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 20)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 2)
    report = Report(machine_info(repeats, warmup, args.quick))
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), {os.cpu_count()} cores, "
        f"{repeats} rounds after {warmup} warm-up"
    )
    started = time.perf_counter()
    if args.tensorflow_only:
        return main_tensorflow(report, args, repeats, warmup, started)
    for case in CASES:
        print(f"{case.describe()}")
        bench_torch_case(case, repeats, warmup, report)
    ready = _compiled.wait(timeout=600)
    report.meta["numpy_compiled_loops"] = "in use" if ready else _compiled.error()
    for case in CASES[:2]:
        print(f"numpy {case.describe()}")
        report.numpy_ms[case.name], checks = bench_numpy_case(case, repeats, warmup)
        report.checks[f"numpy {case.name}"] = checks
        print("  check " + ", ".join(f"{key}={value:.2e}" for key, value in checks.items()))
    bench_tensorflow(repeats, warmup, report)
    report.ratios = compute_ratios(report)
    report.ratios.update(tensorflow_ratios(report.tensorflow))
    report.meta["wall_s"] = round(time.perf_counter() - started, 1)
    report.meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print_tables(report)
    write(report, args.results_dir, "bench_warp.quick" if args.quick else "bench_warp")
    return report


def bench_tensorflow(repeats: int, warmup: int, report: Report) -> None:
    """The TF rows (W1, W2), or a note when TensorFlow is not installed."""
    if not tensorflow_available():
        print("TensorFlow is not installed: no TF rows")
        return
    import tensorflow as tf

    report.meta["tensorflow"] = tf.__version__
    for case in CASES[:2]:
        print(f"tensorflow {case.describe()}")
        bench_tf_case(case, repeats, warmup, report)


def main_tensorflow(
    report: Report, args: argparse.Namespace, repeats: int, warmup: int, started: float
) -> Report:
    """``--tensorflow-only``: the TF rows and their ratios, in bench_warp.tensorflow.*."""
    bench_tensorflow(repeats, warmup, report)
    report.ratios = tensorflow_ratios(report.tensorflow)
    report.meta["wall_s"] = round(time.perf_counter() - started, 1)
    report.meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = tensorflow_markdown(report.tensorflow, report.ratios)
    print(text)
    stem = "bench_warp.tensorflow" + (".quick" if args.quick else "")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{stem}.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
    (args.results_dir / f"{stem}.md").write_text(
        f"# bench_warp (TensorFlow rows)\n\n{report.meta}\n{text}"
    )
    print(f"wrote {args.results_dir / stem}.json and .md ({report.meta['wall_s']} s)")
    return report


def write(report: Report, directory: Path, stem: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.json").write_text(json.dumps(report.as_json(), indent=2) + "\n")
    (directory / f"{stem}.md").write_text(markdown(report))
    print(f"\nwrote {directory / stem}.json and .md ({report.meta['wall_s']} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
