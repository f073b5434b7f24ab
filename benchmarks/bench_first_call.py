"""First-call latency of `geowarp.warp` on a new shape, per backend, beside native peers.

Run from the repository root::

    python benchmarks/bench_first_call.py            # full run, a few minutes on 2 cores
    python benchmarks/bench_first_call.py --quick    # smoke test: one process per peer
    python benchmarks/bench_first_call.py --repeats 7

A registration pyramid or a notebook warps each new image size a handful of
times, so what a call costs the first time a shape comes matters as much as
what it costs in a loop. Every measurement runs in a fresh process per peer
(``--child``), so nothing one peer compiled or cached helps another, and in
that process:

1. one warm-up call, forward and gradient, at 2x3x64x64 (imports, library
   initialisation and shape-independent tracing happen here, not below);
2. "first" / "second": the first two calls, forward and gradient, on a fresh
   2x3x256x256 warp, then "steady": the median of many more calls of it;
3. the same for the forward alone (no gradient) on another fresh shape,
   2x3x224x224 (the forward of a call that records no gradient is its own
   program on TF and JAX).

The processes of all peers are interleaved, ``--repeats`` rounds; the tables
give the median over the rounds (the JSON keeps every sample). Times include
reading the results back (``.numpy()``, ``block_until_ready``).

How each peer gets the same warp (float32, ``align_corners=False``, zeros
outside the image; gradient of ``out.sum()``):

* ``gw numpy`` / ``gw torch`` / ``gw jax`` / ``gw tensorflow``:
  ``gw.warp(image, gw.Affine(theta), out_shape)`` on that library's arrays,
  image (B, C, H, W); the gradient w.r.t. image and theta by
  ``torch.autograd.grad``, ``jax.grad`` and ``tf.GradientTape`` (NumPy: the
  forward only, it has no autodiff).
* ``jax map_coordinates``: the sampling grid ``theta @ (x, y, 1)`` over the
  normalized pixel centres, in pixel (row, column) coordinates, then
  ``jax.scipy.ndimage.map_coordinates(order=1, mode="constant")`` on each
  (H, W) plane (``jax.vmap`` over batch and channels); gradient w.r.t. image
  and theta.
* ``tf ImageProjectiveTransformV3``: ``tf.raw_ops.ImageProjectiveTransformV3``
  on (B, H, W, C) with the pixel-frame matrix of theta as its 8 parameters
  (computed outside the timing), bilinear, constant fill 0; its registered
  gradient is w.r.t. the image only.

Each peer's output is compared with ``gw.warp`` on NumPy after its timings
(``max abs out diff``).

Results go to ``benchmarks/results/first_call.{json,md}`` (``--quick`` writes
``first_call.quick.*`` instead, which git ignores).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import geowarp as gw
from geowarp.grid import normalized_to_pixel_matrix, pixel_to_normalized_matrix

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BATCH, CHANNELS = 2, 3
WARMUP_SIZE, GRADIENT_SIZE, FORWARD_SIZE = 64, 256, 224
FWD, FWD_BWD = "fwd", "fwd+bwd"

PEERS = (
    "gw numpy",
    "gw torch",
    "gw jax",
    "jax map_coordinates",
    "gw tensorflow",
    "tf ImageProjectiveTransformV3",
)
LIBRARY = {
    "gw numpy": "numpy",
    "gw torch": "torch",
    "gw jax": "jax",
    "jax map_coordinates": "jax",
    "gw tensorflow": "tensorflow",
    "tf ImageProjectiveTransformV3": "tensorflow",
}
#: Goals of issue 10, item 5: (peer, step, bound in seconds or the peer it must not exceed).
GOALS = (
    ("gw tensorflow", FWD_BWD, 0.3),
    ("gw jax", FWD_BWD, "jax map_coordinates"),
)


# --------------------------------------------------------------------------- inputs


def make_inputs(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random float32 image (B, C, size, size) and a moderate rotation-scale-shift theta."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 1, (BATCH, CHANNELS, size, size)).astype(np.float32)
    angle = rng.uniform(-0.4, 0.4, BATCH)
    scale = rng.uniform(0.8, 1.2, BATCH)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    shift = rng.uniform(-0.2, 0.2, (BATCH, 2))
    theta = np.stack(
        [np.stack([cos, -sin, shift[:, 0]], -1), np.stack([sin, cos, shift[:, 1]], -1)], 1
    )
    return image, theta.astype(np.float32)


def ipt_parameters(theta: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``ImageProjectiveTransformV3``'s 8 numbers: the pixel-frame output -> input matrix."""
    to_pixel = np.array(normalized_to_pixel_matrix(shape))
    to_normalized = np.array(pixel_to_normalized_matrix(shape))
    bottom = np.broadcast_to([[[0.0, 0.0, 1.0]]], (theta.shape[0], 1, 3))
    matrix = to_pixel @ np.concatenate([theta.astype(np.float64), bottom], 1) @ to_normalized
    return (matrix / matrix[:, 2:3, 2:3]).reshape(-1, 9)[:, :8].astype(np.float32)


# --------------------------------------------------------------------------- the peers' calls
# Each maker takes numpy (image, theta) and returns {step: call() -> numpy output (B, C, H, W)}.


def numpy_calls(peer: str, image: np.ndarray, theta: np.ndarray) -> dict[str, Callable[[], Any]]:
    size = image.shape[-2:]
    return {FWD: lambda: gw.warp(image, gw.Affine(theta), size)}


def torch_calls(peer: str, image: np.ndarray, theta: np.ndarray) -> dict[str, Callable[[], Any]]:
    import torch

    size = tuple(image.shape[-2:])
    image_t = torch.from_numpy(image).requires_grad_(True)
    theta_t = torch.from_numpy(theta).requires_grad_(True)

    def warp(image: Any, theta: Any) -> Any:
        return gw.warp(image, gw.Affine(theta), size)

    def forward() -> Any:
        with torch.no_grad():
            return warp(image_t, theta_t).numpy()

    def both() -> Any:
        out = warp(image_t, theta_t)
        torch.autograd.grad(out.sum(), (image_t, theta_t))
        return out.detach().numpy()

    return {FWD: forward, FWD_BWD: both}


def jax_calls(peer: str, image: np.ndarray, theta: np.ndarray) -> dict[str, Callable[[], Any]]:
    import jax
    import jax.numpy as jnp

    size = tuple(image.shape[-2:])
    image_j, theta_j = jnp.asarray(image), jnp.asarray(theta)

    def map_coordinates_warp(image: Any, theta: Any) -> Any:
        height, width = size
        xs = (2 * jnp.arange(width, dtype=theta.dtype) + 1) / width - 1
        ys = (2 * jnp.arange(height, dtype=theta.dtype) + 1) / height - 1
        base = jnp.stack([*jnp.meshgrid(xs, ys), jnp.ones((height, width), theta.dtype)], 0)
        grid = jnp.einsum("bij,jhw->bihw", theta, base)  # (B, 2, H, W): x, y normalized
        columns = ((grid[:, 0] + 1) * width - 1) / 2
        rows = ((grid[:, 1] + 1) * height - 1) / 2

        def plane(values: Any, row: Any, column: Any) -> Any:
            return jax.scipy.ndimage.map_coordinates(
                values, [row, column], order=1, mode="constant"
            )

        per_channel = jax.vmap(plane, in_axes=(0, None, None))
        return jax.vmap(per_channel)(image, rows, columns)

    def warp(image: Any, theta: Any) -> Any:
        if peer == "gw jax":
            return gw.warp(image, gw.Affine(theta), size)
        return map_coordinates_warp(image, theta)

    def loss(image: Any, theta: Any) -> Any:
        out = warp(image, theta)
        return jnp.sum(out), out

    gradient = jax.grad(loss, argnums=(0, 1), has_aux=True)

    def forward() -> Any:
        return np.asarray(warp(image_j, theta_j))

    def both() -> Any:
        grads, out = gradient(image_j, theta_j)
        jax.block_until_ready(grads)
        return np.asarray(out)

    return {FWD: forward, FWD_BWD: both}


def tensorflow_calls(
    peer: str, image: np.ndarray, theta: np.ndarray
) -> dict[str, Callable[[], Any]]:
    import tensorflow as tf

    size = tuple(image.shape[-2:])
    if peer == "gw tensorflow":
        arrays = [tf.constant(image), tf.constant(theta)]

        def warp(image: Any, theta: Any) -> Any:
            return gw.warp(image, gw.Affine(theta), size)

    else:
        arrays = [tf.constant(image.transpose(0, 2, 3, 1))]
        parameters = tf.constant(ipt_parameters(theta, size))

        def warp(image: Any) -> Any:  # type: ignore[misc]
            out = tf.raw_ops.ImageProjectiveTransformV3(
                images=image,
                transforms=parameters,
                output_shape=list(size),
                fill_value=0.0,
                interpolation="BILINEAR",
                fill_mode="CONSTANT",
            )
            return tf.transpose(out, (0, 3, 1, 2))

    def forward() -> Any:
        return warp(*arrays).numpy()

    def both() -> Any:
        with tf.GradientTape() as tape:
            tape.watch(arrays)
            out = warp(*arrays)
            loss = tf.reduce_sum(out)
        for gradient in tape.gradient(loss, arrays):
            gradient.numpy()
        return out.numpy()

    return {FWD: forward, FWD_BWD: both}


MAKERS = {
    "numpy": numpy_calls,
    "torch": torch_calls,
    "jax": jax_calls,
    "tensorflow": tensorflow_calls,
}


# --------------------------------------------------------------------------- one process


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = call()
    return time.perf_counter() - start, out


def measure(peer: str, steady_calls: int) -> dict[str, Any]:
    """In this (fresh) process: warm up at another shape, then first, second and steady calls."""
    make = MAKERS[LIBRARY[peer]]
    for call in make(peer, *make_inputs(WARMUP_SIZE, seed=1)).values():
        call()  # the warm-up warp: initialisation and imports, not the new shape
    found: dict[str, Any] = {}
    outputs = {}
    for step, size in ((FWD_BWD, GRADIENT_SIZE), (FWD, FORWARD_SIZE)):
        calls = make(peer, *make_inputs(size))
        if step not in calls:
            continue
        first, outputs[step] = _timed(calls[step])
        second, _ = _timed(calls[step])
        steady = [_timed(calls[step])[0] for _ in range(steady_calls)]
        found[step] = {"first": first, "second": second, "steady": statistics.median(steady)}
    for step, out in outputs.items():  # after every timing: nothing here warms them
        image, theta = make_inputs(GRADIENT_SIZE if step == FWD_BWD else FORWARD_SIZE)
        expected = gw.warp(image, gw.Affine(theta), image.shape[-2:])
        found[step]["max_abs_diff"] = float(np.max(np.abs(np.asarray(out) - expected)))
    return found


# --------------------------------------------------------------------------- the parent


def run_child(peer: str, steady_calls: int) -> dict[str, Any] | str:
    """``measure(peer)`` in a fresh interpreter; its results, or its error as text."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, __file__, "--child", peer, "--steady-calls", str(steady_calls)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        return result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def available(library: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(library) is not None


def summarise(samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Median over the processes of each peer, step and figure (seconds)."""
    summary: dict[str, Any] = {}
    for peer, runs in samples.items():
        for step in (FWD_BWD, FWD):
            rows = [run[step] for run in runs if step in run]
            if rows:
                summary.setdefault(peer, {})[step] = {
                    key: statistics.median(row[key] for row in rows) for key in rows[0]
                }
    return summary


def check_goals(summary: dict[str, Any]) -> list[dict[str, Any]]:
    goals = []
    for peer, step, bound in GOALS:
        value = summary.get(peer, {}).get(step, {}).get("first")
        limit = bound if isinstance(bound, float) else None
        label = f"<= {bound} s" if limit is not None else f"<= {bound}'s first call"
        if isinstance(bound, str):
            limit = summary.get(bound, {}).get(step, {}).get("first")
        met = None if value is None or limit is None else value <= limit
        goals.append({"peer": peer, "step": step, "first_s": value, "goal": label, "met": met})
    return goals


def markdown(meta: dict[str, Any], summary: dict[str, Any], goals: list[dict[str, Any]]) -> str:
    lines = [
        "# bench_first_call",
        "",
        f"{meta['date']}; geowarp {meta['geowarp_git']}; {meta['versions']}; "
        f"{meta['cpu_count']} CPU cores ({meta['processor']}); float32, batch {BATCH}x{CHANNELS}; "
        f"median over {meta['repeats']} fresh processes per peer (interleaved), steady = median "
        f"of {meta['steady_calls']} calls; load average {meta['load_average_at_start']} at "
        f"start, {meta['load_average_at_end']} at end. Every sample is in the JSON.",
        "",
        f"First call: a fresh {GRADIENT_SIZE}x{GRADIENT_SIZE} shape (forward and gradient) or "
        f"{FORWARD_SIZE}x{FORWARD_SIZE} (forward alone), after one warm-up warp at "
        f"{WARMUP_SIZE}x{WARMUP_SIZE} in the same process.",
        "",
        "| peer | step | first (s) | second (s) | steady (ms) | first / steady "
        "| max abs out diff vs gw numpy |",
        "|---|---|---|---|---|---|---|",
    ]
    for peer, steps in summary.items():
        for step, row in steps.items():
            lines.append(
                f"| {peer} | {step} | {row['first']:.4f} | {row['second']:.4f} "
                f"| {1e3 * row['steady']:.2f} | {row['first'] / row['steady']:.0f} "
                f"| {row['max_abs_diff']:.1e} |"
            )
    lines += ["", "| goal (issue 10, item 5) | first (s) | goal | met |", "|---|---|---|---|"]
    for goal in goals:
        first = "-" if goal["first_s"] is None else f"{goal['first_s']:.3f}"
        met = {True: "yes", False: "no", None: "-"}[goal["met"]]
        lines.append(f"| {goal['peer']} {goal['step']} | {first} | {goal['goal']} | {met} |")
    for peer, error in meta.get("errors", {}).items():
        lines += ["", f"{peer} failed: `{error.strip().splitlines()[-1]}`"]
    return "\n".join(lines) + "\n"


def git_revision() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return commit + ("+dirty" if dirty else "")


def versions(libraries: list[str]) -> str:
    """Installed versions, read from package metadata (importing the libraries here is slow)."""
    from importlib import metadata

    found = []
    for library in libraries:
        for distribution in (library, f"{library}-cpu", f"{library}_cpu"):
            try:
                found.append(f"{library} {metadata.version(distribution)}")
                break
            except metadata.PackageNotFoundError:
                continue
    return ", ".join(found)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one process per peer: a smoke test")
    parser.add_argument("--repeats", type=int, default=None, help="fresh processes per peer")
    parser.add_argument("--steady-calls", type=int, default=None, help="calls for steady state")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--peers", nargs="*", choices=PEERS, default=None, help="a subset")
    parser.add_argument("--child", choices=PEERS, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    steady_calls = args.steady_calls or (3 if args.quick else 20)
    if args.child:
        print(json.dumps(measure(args.child, steady_calls)))
        return {}
    repeats = args.repeats or (1 if args.quick else 5)
    libraries = [name for name in dict.fromkeys(LIBRARY.values()) if available(name)]
    peers = [p for p in (args.peers or PEERS) if LIBRARY[p] in libraries]
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "geowarp_git": git_revision(),
        "versions": versions(libraries),
        "repeats": repeats,
        "steady_calls": steady_calls,
        "quick": args.quick,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "errors": {},
    }
    started = time.perf_counter()
    samples: dict[str, list[dict[str, Any]]] = {peer: [] for peer in peers}
    for round_index in range(repeats):
        for peer in peers[round_index % len(peers) :] + peers[: round_index % len(peers)]:
            found = run_child(peer, steady_calls)
            if isinstance(found, str):
                meta["errors"][peer] = found
                print(f"{peer}: failed\n{found}")
                continue
            samples[peer].append(found)
            print(f"round {round_index + 1} {peer}: " + json.dumps(found))
    samples = {peer: runs for peer, runs in samples.items() if runs}
    summary = summarise(samples)
    goals = check_goals(summary)
    meta["wall_s"] = round(time.perf_counter() - started, 1)
    meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report = {"meta": meta, "seconds": summary, "goals": goals, "samples": samples}
    text = markdown(meta, summary, goals)
    print(text)
    stem = "first_call.quick" if args.quick else "first_call"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results_dir / f"{stem}.md").write_text(text)
    print(f"wrote {args.results_dir / stem}.json and .md ({meta['wall_s']} s)")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
