"""Benchmark `geowarp.register` against OpenCV ECC and SimpleITK on real photographs.

Run from the repository root::

    python benchmarks/bench_registration.py            # full run, a couple of minutes
    python benchmarks/bench_registration.py --quick    # smoke test

The problems: scikit-image's bundled photographs (camera, astronaut, coffee,
chelsea) in grey, their central square resized to 384x384; the fixed image is
its central 256x256 crop, and the moving image a 256x256 view of the same
photograph through a known transform (a rotation of a few degrees, a few
percent of zoom and a shift, plus a perspective row for the homography), so
that warping the moving image by the true transform gives back the fixed one
and both images hold photograph everywhere (no empty borders to bias a fit).
Float32.

How each peer gets the same problem, and what is compared:

The cases: ``affine`` and ``projective`` by mean squares, and ``affine mi``, an
affine map by mutual information (32 bins, every pixel; same-modality photographs,
so it times the loss, not its reach across modalities).

* ``gw numpy`` / ``gw torch``: ``gw.register(moving, fixed, family, loss=...)``
  with default settings (3-level pyramid) on numpy arrays / torch tensors.
* ``opencv ecc``: ``cv2.findTransformECC(fixed, moving, warp, MOTION_AFFINE
  or MOTION_HOMOGRAPHY)`` on a 3-level ``cv2.pyrDown`` pyramid, coarse to fine,
  the matrix rescaled between levels (50 iterations, eps 1e-6 per level). ECC's
  warp maps fixed pixels to moving pixels, geowarp's direction.
  Not in ``affine mi`` (ECC maximizes a correlation).
* ``simpleitk``: ``ImageRegistrationMethod`` with ``MeanSquares`` (or
  ``MattesMutualInformation`` with 32 bins, over every pixel, for ``affine
  mi``), an ``AffineTransform(2)`` about the image centre, linear
  interpolation, regular-step gradient descent, shrink factors 4/2/1 and
  smoothing sigmas 2/1/0 (affine only: SimpleITK has no 2-D homography). Its
  transform maps fixed points to moving points (pixel indices as physical
  points).
* ``kornia``: ``kornia.geometry.ImageRegistrator("homography")`` with its
  defaults (5-level pyramid, Adam, L1 loss, 100 iterations per level), on
  torch tensors; projective only. Its model maps fixed points to moving
  points in the normalized frame (``align_corners=False``), geowarp's.

Every peer's result becomes the fixed image's four corner pixels mapped into
the moving image; the error is the largest distance to where the true
transform maps them (pixels). Times are medians over rounds, the peers
interleaved. ``gw torch batched`` registers 64 pairs in one call and is
compared per pair with 64 calls of one pair, on ``--device`` (``cuda`` on a
GPU machine; ``--batched-only`` skips the CPU peers, and such runs write
``registration.batched-<device>.*`` beside the main results).

Run as a script, numpy's BLAS runs on one thread (``OPENBLAS_NUM_THREADS=1``,
set before numpy is imported unless given): OpenBLAS's worker threads keep
spinning for a while after each call, and on two cores they took the cores
from whichever peer ran next (a torch registration took 35-114 ms right after
numpy's, 20 ms alone). The products and solves of a registration are small,
so one thread costs the numpy peer nothing measurable (15.4 against 14.8 ms).
Registration itself no longer leaves BLAS threads spinning (a matrix-vector
product did); `bench_mixed.py` measures that with BLAS's default threads.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # see the docstring; before numpy (not when imported)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage import data

import geowarp as gw
from geowarp.grid import normalized_to_pixel, pixel_to_normalized

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SIZE = 256
PHOTOS = ("camera", "astronaut", "coffee", "chelsea")


# --------------------------------------------------------------------------- problems


MARGIN = SIZE // 4  # photograph around the fixed crop, for the moving view


def photo(name: str) -> np.ndarray:
    """A grey float32 photograph of (SIZE + 2 MARGIN) squared pixels, values in [0, 1]."""
    from PIL import Image

    image = getattr(data, name)().astype(np.float64)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=-1)
    height, width = image.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray((image[top : top + side, left : left + side]).astype(np.float32))
    resized = square.resize((SIZE + 2 * MARGIN,) * 2, Image.Resampling.LANCZOS)
    values = np.asarray(resized, dtype=np.float32)
    return np.clip(values / values.max(), 0.0, 1.0)


def true_transform(family: str, seed: int) -> gw.Transform:
    """A known warp: a few degrees, a few percent of zoom, a shift (and a perspective row)."""
    rng = np.random.default_rng(seed)
    angle = math.radians(rng.uniform(-6, 6))
    scale = rng.uniform(0.96, 1.04)
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    shift = rng.uniform(-0.05, 0.05, 2)
    affine = np.array([[cos, -sin, shift[0]], [sin, cos, shift[1]]])
    if family == "affine":
        return gw.Affine(affine)
    return gw.Projective(np.vstack([affine, [*rng.uniform(-0.06, 0.06, 2), 1.0]]))


def problem(family: str, name: str, seed: int) -> tuple[np.ndarray, np.ndarray, gw.Transform]:
    """(moving, fixed, truth) with ``warp(moving, truth) ~ fixed``, both SIZE x SIZE."""
    big = photo(name)
    fixed = big[MARGIN : MARGIN + SIZE, MARGIN : MARGIN + SIZE]
    truth = true_transform(family, seed)
    shape = (SIZE, SIZE)
    # moving pixel q shows fixed pixel truth^-1(q), which is big pixel truth^-1(q) + MARGIN
    moving_to_fixed = np.linalg.inv(np.asarray(truth.to_pixel_matrix(shape, direction="inverse")))
    crop = np.array([[1.0, 0.0, MARGIN], [0.0, 1.0, MARGIN], [0.0, 0.0, 1.0]])
    view = gw.Projective.from_pixel_matrix(
        crop @ moving_to_fixed, big.shape, shape, direction="inverse"
    )
    moving = np.asarray(gw.warp(big[None, None], view, shape))[0, 0]
    return moving.astype(np.float32), np.ascontiguousarray(fixed), truth


def corner_error(pixel_map: Callable[[np.ndarray], np.ndarray], truth: gw.Transform) -> float:
    """Max distance (moving pixels) between a peer's and the true image of the fixed corners."""
    corners = np.array([[0, 0], [SIZE - 1, 0], [0, SIZE - 1], [SIZE - 1, SIZE - 1]], float)
    shape = (SIZE, SIZE)
    expected = normalized_to_pixel(truth.apply(pixel_to_normalized(corners, shape)), shape)
    return float(np.linalg.norm(pixel_map(corners) - expected, axis=-1).max())


def _geowarp_map(transform: gw.Transform) -> Callable[[np.ndarray], np.ndarray]:
    shape = (SIZE, SIZE)

    def mapped(points: np.ndarray) -> np.ndarray:
        normalized = pixel_to_normalized(points, shape)
        return normalized_to_pixel(np.asarray(transform.apply(normalized), np.float64), shape)

    return mapped


def _matrix_map(matrix: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def mapped(points: np.ndarray) -> np.ndarray:
        homogeneous = np.c_[points, np.ones(len(points))] @ np.asarray(matrix, np.float64).T
        return homogeneous[:, :2] / homogeneous[:, 2:]

    return mapped


# --------------------------------------------------------------------------- peers


def _case(case: str) -> tuple[str, str]:
    """(family, loss) of a case: "affine", "projective" (mean squares) or "affine mi"."""
    family, _, loss = case.partition(" ")
    return family, loss or "mse"


def run_geowarp(moving: Any, fixed: Any, case: str) -> Callable[[np.ndarray], np.ndarray]:
    family, loss = _case(case)
    result = gw.register(moving[None, None], fixed[None, None], family, loss=loss)
    return _geowarp_map(result.transform)


def run_geowarp_torch(moving: Any, fixed: Any, case: str) -> Callable[[np.ndarray], np.ndarray]:
    family, loss = _case(case)
    tensors = [torch.from_numpy(np.ascontiguousarray(a))[None, None] for a in (moving, fixed)]
    result = gw.register(*tensors, family, loss=loss)
    transform = gw.transforms.get_family(family)(result.transform.matrix.detach().numpy())
    return _geowarp_map(transform)


def run_ecc(moving: np.ndarray, fixed: np.ndarray, case: str) -> Callable[[np.ndarray], np.ndarray]:
    import cv2  # the CPU peers are imported where they run: `--batched-only` needs neither

    homography = _case(case)[0] == "projective"
    motion = cv2.MOTION_HOMOGRAPHY if homography else cv2.MOTION_AFFINE
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-6)
    pyramid = [(fixed, moving)]
    for _ in range(2):
        pyramid.append(tuple(cv2.pyrDown(image) for image in pyramid[-1]))
    warp = np.eye(3, dtype=np.float32)
    to_finer = np.diag([2.0, 2.0, 1.0]).astype(np.float32)
    for level, (fixed_level, moving_level) in enumerate(reversed(pyramid)):
        if level:  # coordinates double from one level to the next (pyrDown's pixel centres)
            warp = to_finer @ warp @ np.linalg.inv(to_finer)
        estimate = warp if homography else warp[:2].copy()
        _, estimate = cv2.findTransformECC(
            fixed_level, moving_level, estimate, motion, criteria, None, 1
        )
        warp = estimate if homography else np.vstack([estimate, [0.0, 0.0, 1.0]]).astype(np.float32)
    return _matrix_map(warp)


def run_simpleitk(
    moving: np.ndarray, fixed: np.ndarray, case: str
) -> Callable[[np.ndarray], np.ndarray]:
    import SimpleITK as sitk

    fixed_image, moving_image = sitk.GetImageFromArray(fixed), sitk.GetImageFromArray(moving)
    method = sitk.ImageRegistrationMethod()
    if _case(case)[1] == "mi":  # every pixel, as geowarp (no random sampling)
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    else:
        method.SetMetricAsMeanSquares()
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-5, numberOfIterations=200, gradientMagnitudeTolerance=1e-8
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2, 1, 0])
    centre = sitk.CenteredTransformInitializer(
        fixed_image,
        moving_image,
        sitk.AffineTransform(2),
        sitk.CenteredTransformInitializerFilter.GEOMETRY,
    )
    method.SetInitialTransform(centre, inPlace=False)
    found = method.Execute(fixed_image, moving_image)

    def mapped(points: np.ndarray) -> np.ndarray:
        return np.array([found.TransformPoint(tuple(map(float, p))) for p in points])

    return mapped


def run_kornia(
    moving: np.ndarray, fixed: np.ndarray, case: str
) -> Callable[[np.ndarray], np.ndarray]:
    from kornia.geometry import ImageRegistrator

    tensors = [torch.from_numpy(np.ascontiguousarray(a))[None, None] for a in (moving, fixed)]
    # src_homo_dst: fixed (dst) points to moving (src) points, normalized with
    # align_corners=False, which is geowarp's frame and direction
    found = ImageRegistrator("homography").register(*tensors)
    return _geowarp_map(gw.Projective(found.detach().numpy()[0].astype(np.float64)))


PEERS: dict[str, Callable[..., Callable[[np.ndarray], np.ndarray]]] = {
    "gw numpy": run_geowarp,
    "gw torch": run_geowarp_torch,
    "opencv ecc": run_ecc,
    "simpleitk": run_simpleitk,
    "kornia": run_kornia,
}


# --------------------------------------------------------------------------- measurement


def _runs(peer: str, case: str) -> bool:
    """Whether ``peer`` takes part in ``case``: SimpleITK has no 2-D homography, ECC
    maximizes a correlation, not mutual information, and kornia's registrator is
    timed on the homography (its models have no affine map)."""
    family, loss = _case(case)
    if peer == "simpleitk":
        return family == "affine"
    if peer == "opencv ecc":
        return loss != "mi"
    if peer == "kornia":
        return case == "projective"
    return True


def measure(families: list[str], photos: list[str], rounds: int) -> list[dict[str, Any]]:
    rows = []
    for family in families:
        for index, name in enumerate(photos):
            moving, fixed, truth = problem(_case(family)[0], name, seed=index)
            times: dict[str, list[float]] = {peer: [] for peer in PEERS}
            errors: dict[str, float] = {}
            for round_ in range(rounds):
                order = list(PEERS)[round_ % len(PEERS) :] + list(PEERS)[: round_ % len(PEERS)]
                for peer in order:
                    if not _runs(peer, family):
                        continue
                    started = time.perf_counter()
                    pixel_map = PEERS[peer](moving, fixed, family)
                    times[peer].append(time.perf_counter() - started)
                    errors[peer] = corner_error(pixel_map, truth)
            for peer, samples in times.items():
                if samples:
                    rows.append(
                        {
                            "family": family,
                            "photo": name,
                            "peer": peer,
                            "seconds": statistics.median(samples),
                            "corner_error_px": errors[peer],
                        }
                    )
            print(
                f"{family} {name}: "
                + ", ".join(
                    f"{r['peer']} {r['seconds'] * 1e3:.1f} ms / {r['corner_error_px']:.4f} px"
                    for r in rows
                    if r["family"] == family and r["photo"] == name
                )
            )
    return rows


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_batched(pairs: int, rounds: int, device: str = "cpu") -> dict[str, Any]:
    """Seconds per pair: 64 pairs in one torch call against 64 calls of one pair."""
    problems = [problem("affine", PHOTOS[i % len(PHOTOS)], seed=100 + i) for i in range(pairs)]
    moving = torch.from_numpy(np.stack([p[0] for p in problems]))[:, None].to(device)
    fixed = torch.from_numpy(np.stack([p[1] for p in problems]))[:, None].to(device)
    gw.register(moving[:2], fixed[:2], "affine")  # first-use costs (backend, kernels) untimed
    _synchronize(device)
    batched, single = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        result = gw.register(moving, fixed, "affine")
        _synchronize(device)
        batched.append((time.perf_counter() - started) / pairs)
        started = time.perf_counter()
        for i in range(pairs):
            gw.register(moving[i : i + 1], fixed[i : i + 1], "affine")
        _synchronize(device)
        single.append((time.perf_counter() - started) / pairs)
    matrices = result.transform.matrix.detach().cpu().numpy()
    errors = [
        corner_error(_geowarp_map(gw.Affine(matrices[i])), problems[i][2]) for i in range(pairs)
    ]
    return {
        "pairs": pairs,
        "device": device,
        "batched_seconds_per_pair": statistics.median(batched),
        "single_seconds_per_pair": statistics.median(single),
        "max_corner_error_px": max(errors),
    }


def _peer_versions(rows: list[dict[str, Any]]) -> str:
    """The CPU peers' versions, where they ran."""
    if not rows:
        return ""
    import cv2
    import kornia
    import SimpleITK as sitk

    versions = f"opencv {cv2.__version__}, SimpleITK {sitk.Version.VersionString()}"
    return f", {versions}, kornia {kornia.__version__}"


def _peer_tables(rows: list[dict[str, Any]]) -> list[str]:
    """The CPU peers' table and the ratios of numpy's time to theirs."""
    lines = [
        "",
        "| family | photo | peer | time (ms) | max corner error (px) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['family']} | {row['photo']} | {row['peer']} | "
            f"{row['seconds'] * 1e3:.1f} | {row['corner_error_px']:.4f} |"
        )
    lines += ["", "| ratio (median over photos) | value |", "|---|---|"]
    for family in sorted({r["family"] for r in rows}):
        # each peer against geowarp on its own library: kornia's is torch
        for ours, peer in (("numpy", "opencv ecc"), ("numpy", "simpleitk"), ("torch", "kornia")):
            ratios = [
                _time(rows, family, r["photo"], f"gw {ours}") / r["seconds"]
                for r in rows
                if r["family"] == family and r["peer"] == peer
            ]
            if ratios:
                median = statistics.median(ratios)
                lines.append(f"| {family}: gw {ours} / {peer} | {median:.2f} |")
    return lines


def report(rows: list[dict[str, Any]], batched: dict[str, Any], started: float) -> str:
    device = batched["device"]
    where = torch.cuda.get_device_name(device) if device.startswith("cuda") else None
    lines = [
        "# bench_registration",
        "",
        f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}; "
        f"geowarp {gw.__version__}; numpy {np.__version__}, torch {torch.__version__}"
        f"{_peer_versions(rows)}; {where + ', ' if where else ''}"
        f"{os.cpu_count()} CPU cores ({platform.machine()}), numpy BLAS threads "
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; {SIZE}x{SIZE} grey float32; "
        f"load average {os.getloadavg()[0]:.2f}; {time.perf_counter() - started:.0f} s.",
    ]
    if rows:
        lines += _peer_tables(rows)
    batched_time = batched["batched_seconds_per_pair"]
    single_time = batched["single_seconds_per_pair"]
    speedup = single_time / batched_time
    lines += [
        "",
        f"torch on {batched['device']}, {batched['pairs']} affine pairs: "
        f"one call {1e3 * batched_time:.1f} ms per pair, "
        f"one call per pair {1e3 * single_time:.1f} ms per pair: {speedup:.1f}x; "
        f"max corner error {batched['max_corner_error_px']:.4f} px.",
    ]
    return "\n".join(lines) + "\n"


def _time(rows: list[dict[str, Any]], family: str, name: str, peer: str) -> float:
    return next(
        r["seconds"] for r in rows if (r["family"], r["photo"], r["peer"]) == (family, name, peer)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one photo, one round: a smoke test")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--device", default="cpu", help="torch device of the batched comparison (e.g. cuda)"
    )
    parser.add_argument(
        "--batched-only", action="store_true", help="only the 64-pair torch comparison"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    photos = list(PHOTOS[:1] if args.quick else PHOTOS)
    rounds = 1 if args.quick else args.rounds
    cases = ["affine", "projective", "affine mi"]
    rows = [] if args.batched_only else measure(cases, photos, rounds)
    batched = measure_batched(8 if args.quick else 64, 1 if args.quick else 3, args.device)
    text = report(rows, batched, started)
    print(text)
    name = "registration.quick" if args.quick else "registration"
    if args.batched_only or args.device != "cpu":
        name += f".batched-{args.device.replace(':', '')}"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{name}.md").write_text(text)
    payload = {"rows": rows, "batched": batched}
    (args.results_dir / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
