"""Benchmark ``from_estimate`` (affine least squares, homography DLT) against its peers on the CPU.

Run from the repository root::

    python benchmarks/bench_estimate.py            # full run, about a minute
    python benchmarks/bench_estimate.py --quick    # smoke test, a few seconds

Every peer gets the same problem: ``N = 50`` correspondences with small noise,
target points uniform in a 640 x 480 pixel frame, source points their image
under a fixed homography (or affine map) plus Gaussian noise of 0.5 pixel.
geowarp fits ``T`` with ``T.apply(target) ~= source``; the peers estimate the
forward map from their first argument to their second, so each gets
``(target, source)`` in that order and solves the same direction:

* ``skimage``: ``ProjectiveTransform.from_estimate(target, source)`` (and
  ``AffineTransform.from_estimate``), one problem per call (a Python loop over
  the batch rows).
* ``cv2``: ``cv2.findHomography(target, source, method=0)`` (all points, least
  squares), one problem per call.
* ``kornia``: ``kornia.geometry.homography.find_homography_dlt(target,
  source)`` on (B, N, 2) tensors, batched like geowarp.
* ``numpy lstsq``: ``np.linalg.lstsq([target, 1], source)``, the plain affine
  least squares, one problem per call.

The batched rows fit 1,000 problems in one call (peers without a batch API
loop); the figure is the median time of one call divided by the number of
problems. The single rows fit one problem. Within a case the peers are
interleaved: every round calls each once, in an order shuffled per round
(seeded; see `time_interleaved`), and medians are taken after a warm-up
round. Threads: every library runs single-threaded (BLAS through
``OPENBLAS_NUM_THREADS=1`` and ``OMP_NUM_THREADS=1`` set before numpy loads,
``torch.set_num_threads(1)``, ``cv2.setNumThreads(1)``): on a shared 2-core
machine, threaded BLAS beside PyTorch's thread pool made scikit-image's
single SVD take 20-40 ms instead of 0.15 ms, which measures the machine, not
the method.

Results go to ``benchmarks/results/estimate.{json,md}`` (``--quick`` writes
``estimate.quick.*``; ``--results-dir`` moves them).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy loads its BLAS; see the docstring

import _timing  # noqa: E402
import numpy as np  # noqa: E402

import geowarp as gw  # noqa: E402

HOMOGRAPHY = np.array([[1.02, 0.05, -12.0], [-0.03, 0.98, 8.0], [2e-5, -3e-5, 1.0]])
AFFINE = np.array([[1.02, 0.05, -12.0], [-0.03, 0.98, 8.0]])


def problems(batch: int, count: int, family: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(source, target)`` of shape (batch, count, 2): pixel points and noisy images."""
    rng = np.random.default_rng(seed)
    target = rng.uniform((0, 0), (640, 480), (batch, count, 2))
    transform = gw.Projective(HOMOGRAPHY) if family == "projective" else gw.Affine(AFFINE)
    source = transform.apply(target) + rng.normal(0, 0.5, target.shape)
    return source, target


def peers(family: str, source: np.ndarray, target: np.ndarray) -> dict[str, Callable[[], Any]]:
    """Each peer's fit of every problem in ``(source, target)``, as a call with no arguments."""
    cls = gw.Projective if family == "projective" else gw.Affine
    calls: dict[str, Callable[[], Any]] = {}
    for dtype in ("float64", "float32"):
        numpy_pair = (source.astype(dtype), target.astype(dtype))
        calls[f"gw numpy {dtype}"] = lambda p=numpy_pair: cls.from_estimate(*p)
        try:
            import torch

            torch_pair = tuple(torch.from_numpy(a) for a in numpy_pair)
            calls[f"gw torch {dtype}"] = lambda p=torch_pair: cls.from_estimate(*p)
        except ImportError:
            pass
    calls.update(_peer_calls(family, source, target))
    return calls


def _peer_calls(
    family: str, source: np.ndarray, target: np.ndarray
) -> dict[str, Callable[[], Any]]:
    calls: dict[str, Callable[[], Any]] = {}
    try:
        from skimage import transform

        peer = (
            transform.ProjectiveTransform if family == "projective" else transform.AffineTransform
        )
        calls["skimage"] = lambda: [
            peer.from_estimate(t, s) for s, t in zip(source, target, strict=True)
        ]
    except ImportError:
        pass
    if family == "projective":
        try:
            import cv2

            cv2.setNumThreads(1)
            calls["cv2"] = lambda: [
                cv2.findHomography(t, s, 0) for s, t in zip(source, target, strict=True)
            ]
        except ImportError:
            pass
        try:
            import torch
            from kornia.geometry.homography import find_homography_dlt

            pair = (torch.from_numpy(target), torch.from_numpy(source))
            calls["kornia float64"] = lambda: find_homography_dlt(*pair)
        except ImportError:
            pass
    else:
        ones = np.ones((target.shape[1], 1))
        calls["numpy lstsq"] = lambda: [
            np.linalg.lstsq(np.c_[t, ones], s, rcond=None)
            for s, t in zip(source, target, strict=True)
        ]
    return calls


def time_interleaved(
    calls: dict[str, Callable[[], Any]], rounds: int, seed: int = 0
) -> dict[str, float]:
    """Median seconds per call of each entry, the entries interleaved in a shuffled order.

    Every round calls each entry once, in an order shuffled afresh (seeded), so
    each entry follows each other one about equally often: a call made right
    after a heavy one (kornia's) runs slower, whoever makes it, and a fixed
    rotation put the same entry after it in most rounds. One warm-up round.
    """
    timings = _timing.time_interleaved(calls, rounds, 1, shuffle_seed=seed)
    return {name: timing.median / 1e3 for name, timing in timings.items()}


def check(family: str, source: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Largest residual of geowarp's fit of the first problem, and its gap to scikit-image's."""
    cls = gw.Projective if family == "projective" else gw.Affine
    fit = cls.from_estimate(source[0], target[0])
    found = {"max residual (px)": float(gw.estimate.residuals(fit, source[0], target[0]).max())}
    try:
        from skimage import transform

        peer = (
            transform.ProjectiveTransform if family == "projective" else transform.AffineTransform
        )
        theirs = peer.from_estimate(target[0], source[0]).params
        mine = fit.matrix if family == "projective" else np.r_[fit.matrix, [[0.0, 0.0, 1.0]]]
        found["max |H - H_skimage| (H[2,2] = 1)"] = float(
            np.abs(mine - theirs / theirs[2, 2]).max()
        )
    except ImportError:
        pass
    return found


def run(quick: bool, results_dir: Path) -> dict[str, Any]:
    """Time every case, write the JSON and markdown results, and return them."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    batch, rounds = (100, 3) if quick else (1000, 15)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    rows = []
    for family in ("projective", "affine"):
        for label, size, repeats in (("batched", batch, rounds), ("single", 1, 20 * rounds)):
            source, target = problems(size, 50, family)
            medians = time_interleaved(peers(family, source, target), repeats)
            for name, seconds in medians.items():
                rows.append(
                    {
                        "family": family,
                        "case": label,
                        "batch": size,
                        "peer": name,
                        "ms per problem": 1e3 * seconds / size,
                    }
                )
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python "
        f"{platform.python_version()}",
        "quick": quick,
        "load average": {
            "start": load_at_start,
            "end": [round(x, 2) for x in os.getloadavg()],
        },
        "points per problem": 50,
        "rows": rows,
        "checks": {
            family: check(family, *problems(1, 50, family)) for family in ("projective", "affine")
        },
    }
    suffix = ".quick" if quick else ""
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"estimate{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    (results_dir / f"estimate{suffix}.md").write_text(markdown(results))
    return results


def markdown(results: dict[str, Any]) -> str:
    """The results as a markdown table per family and case."""
    lines = [
        "# Estimation from 50 point correspondences",
        "",
        f"{results['date']}, {results['machine']}; `python benchmarks/bench_estimate.py`"
        f"{' --quick' if results['quick'] else ''}; load average "
        f"{results['load average']['start']} at start, {results['load average']['end']} at end.",
        "Median milliseconds per problem; see the script's docstring for how each peer gets the",
        "same problem.",
        "",
    ]
    for family in ("projective", "affine"):
        for case in ("batched", "single"):
            chosen = [r for r in results["rows"] if r["family"] == family and r["case"] == case]
            if not chosen:
                continue
            lines += [
                f"## {family}, {case} (batch {chosen[0]['batch']})",
                "",
                "| peer | ms per problem |",
                "|---|---:|",
            ]
            lines += [f"| {r['peer']} | {r['ms per problem']:.4f} |" for r in chosen]
            lines.append("")
    lines += ["## Checks", ""]
    for family, found in results["checks"].items():
        lines += [f"- {family}: " + ", ".join(f"{k} = {v:.2e}" for k, v in found.items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line: ``--quick`` and ``--results-dir``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: small batch, 3 rounds")
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).parent / "results")
    arguments = parser.parse_args()
    results = run(arguments.quick, arguments.results_dir)
    print(markdown(results))


if __name__ == "__main__":
    main()
