"""Benchmark `geowarp.dask.warp` against `dask_image.ndinterp.affine_transform`.

Run from the repository root::

    python benchmarks/bench_dask.py            # 8192 x 8192, a minute or two on 2 cores
    python benchmarks/bench_dask.py --quick    # 2048 x 2048, seconds
    python benchmarks/bench_dask.py --size 16384

The image is float32, generated lazily from its coordinates
(``sin(x / 37) + cos(y / 53)``, `dask.array.fromfunction`) in 1024 x 1024
chunks, so neither peer starts from an array in memory. Each peer runs in a
fresh process (dask's threaded scheduler, its default thread count), warps to
the same size in 1024 x 1024 output chunks and reduces the result with
``.sum()``, so output blocks are freed as they are made; the time covers
building the graph and computing it, the memory is the process's peak
resident set (``resource.getrusage``) minus its resident set before the warp.
A small warp first takes imports and first-call costs out of both, and
geowarp's waits for numba's compiled sampler loops (the ``numba`` extra),
which a process loads in the background on its first warp (numba and LLVM
take about 110 MiB of resident memory, once per process).

How each peer gets the same warp (a rotation by 10 degrees with a 0.8 zoom
about the centre, bilinear, zeros outside):

* ``geowarp.dask``: ``geowarp.dask.warp(image[None, None], Affine(theta))``
  with ``theta`` in the normalized frame, ``align_corners=False``.
* ``dask_image``: ``affine_transform(image, matrix, offset, order=1,
  mode="grid-constant", output_chunks=1024)`` where ``matrix``/``offset``
  are the pixel-frame map ``N_in^-1 @ theta @ N_out``
  (`geowarp.grid.normalized_to_pixel_matrix` and its inverse) reordered from
  (x, y) to SciPy's (row, col) axis order; ``"grid-constant"`` is the mode
  that interpolates towards the zero
  border as ``grid_sample`` does.

Before timing, both peers warp a 256 x 256 crop of the problem and their
difference is reported (SciPy computes its coordinates in another order, so
they agree to float32 rounding, not bit for bit).

Results go to ``benchmarks/results/dask.{json,md}`` (``--quick`` writes
``dask.quick.*``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CHUNK = 1024
PEERS = ("geowarp.dask", "dask_image")


def theta() -> np.ndarray:
    """Rotation by 10 degrees with a 0.8 zoom, in the normalized frame."""
    angle = math.radians(10.0)
    cos, sin = 0.8 * math.cos(angle), 0.8 * math.sin(angle)
    return np.array([[cos, -sin, 0.02], [sin, cos, -0.03]])


def image(size: int):
    """The lazily generated float32 image (size, size) in `CHUNK` chunks."""
    import dask.array as da

    def values(y, x):
        return (np.sin(x / 37.0) + np.cos(y / 53.0)).astype(np.float32)

    return da.fromfunction(values, shape=(size, size), chunks=CHUNK, dtype=np.float32)


def scipy_matrix(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``theta`` as SciPy's (row, col) pixel-frame matrix and offset."""
    from geowarp.grid import normalized_to_pixel_matrix, pixel_to_normalized_matrix

    full = np.vstack([theta(), [0.0, 0.0, 1.0]])
    pixel = (
        normalized_to_pixel_matrix((size, size)) @ full @ pixel_to_normalized_matrix((size, size))
    )
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rowcol = swap @ pixel @ swap
    return rowcol[:2, :2], rowcol[:2, 2]


def warped(peer: str, size: int, chunk: int = CHUNK):
    """The lazy warp of the (size, size) image by ``peer``, (size, size)."""
    source = image(size)
    if peer == "geowarp.dask":
        import geowarp as gw
        import geowarp.dask

        out = geowarp.dask.warp(source[None, None], gw.Affine(theta()), chunks=chunk)
        return out[0, 0]
    from dask_image.ndinterp import affine_transform

    matrix, offset = scipy_matrix(size)
    return affine_transform(
        source,
        matrix,
        offset,
        output_shape=(size, size),
        output_chunks=(chunk, chunk),
        order=1,
        mode="grid-constant",
    )


def measure(peer: str, size: int) -> dict[str, float]:
    """Time and peak memory of one warp by ``peer``, in this process."""
    import dask

    warped(peer, 256, 64).compute()  # imports and first-call costs out of the timing
    loops = None
    if peer == "geowarp.dask":  # as is numba's loading of the compiled sampler loops
        from geowarp.samplers import _compiled

        loops = _compiled.wait(timeout=600)
    before = _rss_mib()
    start = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        total = float(warped(peer, size).sum().compute())
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"seconds": seconds, "peak_mib": peak - before, "sum": total}
    return result if loops is None else {**result, "compiled_loops": loops}


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def agreement() -> float:
    """Largest difference between the peers on a 256 x 256 warp."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        ours = warped("geowarp.dask", 256, 64).compute()
        theirs = warped("dask_image", 256, 64).compute()
    return float(np.max(np.abs(ours - theirs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2048 x 2048 smoke run")
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--child", nargs=2, metavar=("PEER", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one measurement in a fresh process
        print(json.dumps(measure(args.child[0], int(args.child[1]))))
        return
    size = 2048 if args.quick else args.size
    rows = {}
    for peer in PEERS:
        command = [sys.executable, __file__, "--child", peer, str(size)]
        rows[peer] = json.loads(
            subprocess.run(command, capture_output=True, check=True, text=True).stdout
        )
        print(peer, rows[peer], flush=True)
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "size": size,
        "chunk": CHUNK,
        "max_abs_difference_256": agreement(),
        "peers": rows,
    }
    write(report, args.results_dir, "dask.quick" if args.quick else "dask")


def write(report: dict, directory: Path, stem: str) -> None:
    """``stem``.json and ``stem``.md under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    size = report["size"]
    lines = [
        f"# geowarp.dask.warp vs dask_image affine_transform ({size} x {size} float32)",
        "",
        f"{report['date']}, {report['machine']}; {CHUNK} x {CHUNK} chunks, bilinear, zeros, "
        "threaded scheduler; see benchmarks/bench_dask.py for how each peer gets the same warp.",
        "",
        "| peer | time (s) | peak memory (MiB) |",
        "|---|---|---|",
    ]
    for peer, row in report["peers"].items():
        lines.append(f"| {peer} | {row['seconds']:.2f} | {row['peak_mib']:.0f} |")
    lines += [
        "",
        f"Largest difference on a 256 x 256 warp: {report['max_abs_difference_256']:.2e}.",
    ]
    (directory / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
