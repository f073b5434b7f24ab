"""Benchmark the registration inner loop's kernels (issue 11): numpy forward, torch projective.

Run from the repository root::

    python benchmarks/bench_kernels.py            # full run, about two minutes on 2 cores
    python benchmarks/bench_kernels.py --quick    # smoke test
    python benchmarks/bench_kernels.py --results-dir /tmp/somewhere

Everything runs in one process, float32, with the libraries' default thread
counts. Within a case the peers are interleaved: every round calls each one
once, and the reported figure is the median over the rounds after the warm-up
ones. The torch cases rotate the order (`_timing.time_interleaved`); the
numpy cases shuffle it afresh every round (``shuffle_seed``, seeded), because
there a call runs 10-30% slower right after cv2's (whose worker threads are
still busy) or after the portable path's (cold caches), and a rotation put
the same peer after the same one in most rounds. Interleaved, each call
finds its data out of cache and cv2's worker threads asleep, as a warp among
other work does; the numpy cases are also timed back to back
(`_timing.time_back_to_back`: many calls in a row, the best case of each),
and both ratios are reported.

How each peer gets the same warp (the inputs are `bench_warp.make_inputs`'s: a
smooth random image and a moderate random affine or homography, normalized,
destination -> source, ``align_corners=False``, zero padding):

* NumPy forward, affine (``N1`` 256x1x28x28, ``N2`` 8x3x256x256, ``N3``
  1x1x1024x1024):

  - ``gw``: ``gw.warp(image, gw.Affine(theta), out_shape)`` on numpy arrays,
    the transform built inside the timed call; with the ``numba`` extra
    installed it runs numba's compiled loops (``geowarp/samplers/_compiled.py``,
    waited for before timing), their rows spread over the cores as cv2's;
  - ``gw numpy``: the same with the compiled loops held off: numpy's chunked
    sampler kernels (``geowarp/samplers/_numpy.py``), on one thread;
  - ``gw portable``: the same with ``native=False``: the array-API sampler,
    what numpy ran before that kernel existed;
  - ``cv2``: ``cv2.remap(image[b], map_x[b], map_y[b], INTER_LINEAR,
    BORDER_CONSTANT, 0)``, channels last, one image at a time, looped over
    the batch (a channels-last image carries all its channels through one
    call), each written in place into its part of one output (``dst=``).
    ``map_x, map_y`` are float32 pixel coordinates (integer pixel centres) of
    geowarp's own sampling grid, computed in float64 outside the
    timing; the channels-last copy of the image and the output buffer are
    made outside the timing too. OpenCV is imported after the torch cases:
    loaded beside PyTorch, it made PyTorch's kernels several times slower.
    ``remap`` interpolates with 5-bit fixed-point weights (1/32 pixel), hence
    its larger output differences.

* PyTorch forward+backward, projective (``P1`` 256x1x28x28, ``P2``
  8x3x256x256); the image and the peer's matrix require grad and
  ``torch.autograd.grad(out.sum(), (image, matrix))`` is timed:

  - ``gw``: ``gw.warp(image, gw.Projective(H), out_shape)``;
  - ``torch``: the homogeneous base grid (H*W, 3) times ``H^T`` by one
    batched matmul, divided by the third coordinate, then
    ``F.grid_sample`` (`bench_warp.torch_projective`);
  - ``kornia``: ``warp_perspective(image, M, out_shape, align_corners=False)``
    with the pixel-frame source -> destination matrix
    ``M = inv(N_in^-1 @ H @ N_out)`` (converted outside the timing; ``M`` is
    its parameter leaf).

  Forward-only times are recorded too.

Before timing, every peer's output is compared with gw's (and the
gradients, where the parameters are the same), and printed. Results go to
``<results-dir>/kernels.{json,md}`` (``--quick``: ``kernels.quick.*``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kornia
import numpy as np
import torch
from _timing import time_back_to_back, time_interleaved
from bench_warp import (
    FWD,
    FWD_BWD,
    Case,
    Peer,
    _forward_backward_call,
    _forward_call,
    _max_abs,
    _relative,
    _run_with_grads,
    git_revision,
    make_inputs,
    pixel_matrix,
    torch_projective,
)
from kornia.geometry.transform import warp_perspective

import geowarp as gw
from geowarp.grid import normalized_to_pixel
from geowarp.samplers import _compiled

RESULTS_DIR = Path(__file__).resolve().parent / "results"
NUMPY_CASES = (
    Case("N1", "affine", 256, 1, 28, 28),
    Case("N2", "affine", 8, 3, 256, 256),
    Case("N3", "affine", 1, 1, 1024, 1024),
)
TORCH_CASES = (
    Case("P1", "projective", 256, 1, 28, 28),
    Case("P2", "projective", 8, 3, 256, 256),
)
GOALS = {
    "numpy fwd gw/cv2": 3.0,
    "numpy fwd gw/cv2, back to back": 3.0,
    "fwd+bwd gw/torch": 0.9,
    "fwd+bwd gw/kornia": 1.0,
}


# --------------------------------------------------------------------------- numpy


def _cv2() -> Any:
    # Imported only after the torch cases: with OpenCV loaded, PyTorch's CPU kernels
    # ran several times slower on the 2-core machine this was written on.
    import cv2

    return cv2


def remap_maps(theta: np.ndarray, out_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """cv2's float32 ``map_x, map_y`` (B, H_out, W_out): geowarp's grid in pixels."""
    grid = gw.Affine(theta.astype(np.float64)).sampling_grid(out_shape)
    pixels = normalized_to_pixel(grid, out_shape)  # the input has the output's size here
    return pixels[..., 0].astype(np.float32), pixels[..., 1].astype(np.float32)


def cv2_warp(
    channels_last: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """``cv2.remap`` per image: (B, H, W, C) -> ``out`` (B, H_out, W_out, C)."""
    cv2 = _cv2()
    for b in range(channels_last.shape[0]):
        # written in place: (H, W) for one channel, else (H, W, C), a view of ``out``
        into = out[b, ..., 0] if out.shape[-1] == 1 else out[b]
        cv2.remap(
            channels_last[b],
            map_x[b],
            map_y[b],
            cv2.INTER_LINEAR,
            dst=into,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
    return out


def without_compiled_loops(function: Callable[[], object]) -> Callable[[], object]:
    """``function`` run with numba's compiled loops held off: numpy's chunks serve."""

    def run() -> object:
        loops, _compiled._State.kernels = _compiled._State.kernels, None
        try:
            return function()
        finally:
            _compiled._State.kernels = loops

    return run


def bench_numpy_case(case: Case, repeats: int, warmup: int) -> dict[str, Any]:
    """Forward medians (ms) and output checks of gw, gw numpy, gw portable and cv2.remap."""
    inputs = make_inputs(case)
    image, theta = inputs.image, inputs.params
    map_x, map_y = remap_maps(theta, case.out_shape)
    channels_last = np.ascontiguousarray(image.transpose(0, 2, 3, 1))
    out = np.empty((case.batch, *case.out_shape, case.channels), dtype=np.float32)
    fns: dict[str, Callable[[], object]] = {
        "gw": lambda: gw.warp(image, gw.Affine(theta), case.out_shape),
        "gw numpy": without_compiled_loops(
            lambda: gw.warp(image, gw.Affine(theta), case.out_shape)
        ),
        "gw portable": lambda: gw.warp(image, gw.Affine(theta), case.out_shape, native=False),
        "cv2": lambda: cv2_warp(channels_last, map_x, map_y, out),
    }
    reference = gw.warp(image, gw.Affine(theta), case.out_shape)
    chunks = fns["gw numpy"]()
    portable = gw.warp(image, gw.Affine(theta), case.out_shape, native=False)
    remapped = cv2_warp(channels_last, map_x, map_y, out).transpose(0, 3, 1, 2)
    checks = {
        "gw numpy out_max_abs": float(np.abs(chunks - reference).max()),
        "gw portable out_max_abs": float(np.abs(portable - reference).max()),
        "gw out_max_rel vs portable": float(
            np.abs(portable - reference).max() / np.abs(portable).max()
        ),
        "cv2 out_max_abs": float(np.abs(remapped - reference).max()),
    }
    timings = time_interleaved(fns, repeats, warmup, shuffle_seed=0)
    alone = time_back_to_back(
        {name: fns[name] for name in ("gw", "gw numpy", "cv2")}, repeats, warmup
    )
    return {
        "ms": {name: t.median for name, t in timings.items()},
        "min_ms": {name: t.minimum for name, t in timings.items()},
        "back_to_back_ms": {name: t.median for name, t in alone.items()},
        "checks": checks,
    }


# --------------------------------------------------------------------------- torch


def torch_peers(case: Case) -> tuple[list[Peer], np.ndarray]:
    inputs = make_inputs(case)
    forward = np.linalg.inv(pixel_matrix(inputs.params, case.out_shape, case.out_shape))

    def gw_projective(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        return gw.warp(image, gw.Projective(matrix), case.out_shape)

    def kornia_projective(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        return warp_perspective(image, matrix, case.out_shape, align_corners=False)

    peers = [
        Peer("gw", gw_projective, inputs.params, True),
        Peer("torch", torch_projective, inputs.params, True),
        Peer("kornia", kornia_projective, forward.astype(np.float32), False),
    ]
    return peers, inputs.image


def torch_checks(peers: list[Peer], image: np.ndarray) -> dict[str, dict[str, float]]:
    """Output, image-gradient and (same parameters) matrix-gradient differences from gw."""
    results = {peer.name: _run_with_grads(peer, image) for peer in peers}
    out, d_image, d_params = results["gw"]
    checks: dict[str, dict[str, float]] = {}
    for peer in peers[1:]:
        other = results[peer.name]
        check = {
            "out_max_abs": _max_abs(other[0], out),
            "d_image_max_abs": _max_abs(other[1], d_image),
        }
        if peer.same_params_as_gw:
            check["d_params_max_rel"] = _relative(other[2], d_params)
        checks[peer.name] = check
    return checks


def bench_torch_case(case: Case, repeats: int, warmup: int) -> dict[str, Any]:
    peers, image = torch_peers(case)
    checks = torch_checks(peers, image)
    calls = {FWD: _forward_call, FWD_BWD: _forward_backward_call}
    fns = {f"{p.name}|{mode}": make(p, image) for p in peers for mode, make in calls.items()}
    timings = time_interleaved(fns, repeats, warmup)
    ms = {p.name: {mode: timings[f"{p.name}|{mode}"].median for mode in calls} for p in peers}
    min_ms = {p.name: {mode: timings[f"{p.name}|{mode}"].minimum for mode in calls} for p in peers}
    return {"ms": ms, "min_ms": min_ms, "checks": checks}


# --------------------------------------------------------------------------- report


def ratios(numpy_results: dict[str, Any], torch_results: dict[str, Any]) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, result in numpy_results.items():
        ms = result["ms"]
        found[f"{name} numpy fwd gw/cv2"] = ms["gw"] / ms["cv2"]
        found[f"{name} numpy fwd gw numpy/cv2"] = ms["gw numpy"] / ms["cv2"]
        found[f"{name} numpy fwd gw portable/cv2"] = ms["gw portable"] / ms["cv2"]
        found[f"{name} numpy fwd gw/gw portable"] = ms["gw"] / ms["gw portable"]
        alone = result["back_to_back_ms"]
        found[f"{name} numpy fwd gw/cv2, back to back"] = alone["gw"] / alone["cv2"]
        found[f"{name} numpy fwd gw numpy/cv2, back to back"] = alone["gw numpy"] / alone["cv2"]
    for name, result in torch_results.items():
        ms = result["ms"]
        for mode in (FWD_BWD, FWD):
            found[f"{name} {mode} gw/torch"] = ms["gw"][mode] / ms["torch"][mode]
            found[f"{name} {mode} gw/kornia"] = ms["gw"][mode] / ms["kornia"][mode]
    return found


def goal(ratio_name: str) -> float | None:
    """The issue's bound on a ratio (None for a ratio without one)."""
    if ratio_name.startswith(tuple(f"{c.name} {FWD} " for c in TORCH_CASES)):
        return None  # forward-only torch ratios are for reference
    return next((bound for key, bound in GOALS.items() if ratio_name.endswith(key)), None)


def _numba_version() -> str:
    try:
        import numba
    except ImportError:
        return "not installed"
    return str(numba.__version__)


def machine_info(repeats: int, warmup: int, quick: bool) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "kornia": kornia.__version__,
        "geowarp": gw.__version__,
        "geowarp_git": git_revision(),
        "repeats": repeats,
        "warmup": warmup,
        "quick": quick,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        "# bench_kernels",
        "",
        f"{meta['date']}; geowarp {meta['geowarp_git']}; numpy {meta['numpy']}, cv2 "
        f"{meta['cv2']} ({meta['cv2_threads']} threads), numba {meta['numba']} (compiled "
        f"loops: {meta['compiled_loops']}), torch {meta['torch']} "
        f"({meta['torch_threads']} threads), kornia {meta['kornia']}; {meta['cpu_count']} CPU "
        f"cores; float32; median of {meta['repeats']} interleaved rounds after "
        f"{meta['warmup']} warm-up; load average {meta['load_average_at_start']} at start, "
        f"{meta['load_average_at_end']} at end (minima in the JSON).",
        "",
        "## NumPy forward, affine (ms)",
        "",
        "| case | gw | gw numpy | gw portable | cv2.remap | gw, back to back "
        "| gw numpy, back to back | cv2.remap, back to back | gw numpy vs gw (max abs) "
        "| gw vs portable (max abs) | cv2 vs gw (max abs) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in NUMPY_CASES:
        result = report["numpy"][case.name]
        ms, alone, checks = result["ms"], result["back_to_back_ms"], result["checks"]
        lines.append(
            f"| {case.describe()} | {ms['gw']:.2f} | {ms['gw numpy']:.2f} | "
            f"{ms['gw portable']:.2f} | {ms['cv2']:.2f} | {alone['gw']:.2f} | "
            f"{alone['gw numpy']:.2f} | {alone['cv2']:.2f} | "
            f"{checks['gw numpy out_max_abs']:.1e} | "
            f"{checks['gw portable out_max_abs']:.1e} | {checks['cv2 out_max_abs']:.1e} |"
        )
    lines += [
        "",
        "## PyTorch projective (ms)",
        "",
        "| case | peer | fwd | fwd+bwd | out vs gw | d_image vs gw | d_matrix vs gw (rel) |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in TORCH_CASES:
        result = report["torch"][case.name]
        for peer, times in result["ms"].items():
            check = result["checks"].get(peer, {})
            cells = [
                f"{check[key]:.1e}" if key in check else "-"
                for key in ("out_max_abs", "d_image_max_abs", "d_params_max_rel")
            ]
            lines.append(
                f"| {case.describe()} | {peer} | {times[FWD]:.2f} | {times[FWD_BWD]:.2f} | "
                + " | ".join(cells)
                + " |"
            )
    lines += ["", "## Ratios (lower is better for geowarp)", ""]
    lines += ["| ratio | value | goal | met |", "|---|---|---|---|"]
    for key, value in report["ratios"].items():
        bound = goal(key)
        met = "-" if bound is None else ("yes" if value <= bound else "no")
        lines.append(f"| {key} | {value:.2f} | {'-' if bound is None else bound} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny repeats: a smoke test")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds per case")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 40)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    report: dict[str, Any] = {"meta": machine_info(repeats, warmup, args.quick)}
    report["numpy"], report["torch"] = {}, {}
    for case in TORCH_CASES:  # first: before OpenCV is imported (see `_cv2`)
        print(f"torch {case.describe()}")
        report["torch"][case.name] = result = bench_torch_case(case, repeats, warmup)
        for peer, check in result["checks"].items():
            print(
                f"  check {peer:<7} vs gw: " + ", ".join(f"{k}={v:.2e}" for k, v in check.items())
            )
    cv2 = _cv2()
    report["meta"].update(cv2=cv2.__version__, cv2_threads=cv2.getNumThreads())
    ready = _compiled.wait(timeout=600)  # compiled (or loaded from numba's cache) in the background
    report["meta"].update(
        numba=_numba_version(), compiled_loops="in use" if ready else _compiled.error()
    )
    for case in NUMPY_CASES:
        print(f"numpy {case.describe()}")
        report["numpy"][case.name] = result = bench_numpy_case(case, repeats, warmup)
        print("  check " + ", ".join(f"{k}={v:.2e}" for k, v in result["checks"].items()))
    report["ratios"] = ratios(report["numpy"], report["torch"])
    report["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = markdown(report)
    print("\n" + text)
    stem = "kernels.quick" if args.quick else "kernels"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results_dir / f"{stem}.md").write_text(text)
    print(f"wrote {args.results_dir / stem}.json and .md")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
