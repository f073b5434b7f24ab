"""Warp a gigapixel image by a thin-plate spline on a dask.distributed cluster.

The image (32,768 x 32,768 float32 by default, 4 GiB) is never held in
memory: each chunk is a function of its pixel coordinates, made where it is
needed. `geowarp.dask.warp` builds one task per output block that reads only
the input region the block's points reach; the warped image is reduced to its
mean, so output blocks are freed as they are made. Two single-threaded worker
processes with 2 GiB each do the work, with a progress bar.

For comparison the same image is warped by an affine map (a rotation by 10
degrees with a 0.8 zoom) twice, by `geowarp.dask.warp` and by
``dask_image.ndinterp.affine_transform`` (when dask-image is installed), on
the same cluster. Each run starts on freshly restarted workers, so the peak
resident memory each worker reports (``resource.getrusage``) is that run's.

Run from the repository root::

    python examples/dask_gigapixel.py                  # 32768 x 32768
    python examples/dask_gigapixel.py --size 4096      # seconds
    python examples/dask_gigapixel.py --report benchmarks/results/gigapixel.md
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, progress

import geowarp as gw
import geowarp.dask
from geowarp.grid import normalized_to_pixel_matrix, pixel_to_normalized_matrix


def image(size: int, chunk: int) -> Any:
    """The (1, 1, size, size) float32 image, each chunk computed from its pixel coordinates."""

    def pattern(block: np.ndarray, block_info: Any = None) -> np.ndarray:
        (top, bottom), (left, right) = block_info[None]["array-location"]
        y, x = np.ogrid[top:bottom, left:right]
        # smooth waves plus a fine checkerboard, so a wrong read shows in the mean
        waves = np.sin(x / 37.0, dtype=np.float32) + np.cos(y / 53.0, dtype=np.float32)
        return waves + ((x // 64 + y // 64) % 2).astype(np.float32)

    # da.empty's chunks cost nothing until a task needs them; map_blocks fills each one
    blank = da.empty((size, size), chunks=chunk, dtype=np.float32)
    return blank.map_blocks(pattern, dtype=np.float32)[None, None]


def spline() -> gw.ThinPlateSpline:
    """A smooth float32 deformation: a 4 x 4 control grid, each point moved a little."""
    control = gw.ThinPlateSpline.control_points((4, 4)).astype(np.float32)
    moves = np.random.default_rng(0).normal(scale=0.05, size=control.shape).astype(np.float32)
    return gw.ThinPlateSpline(control + moves, control)


def theta() -> np.ndarray:
    """Rotation by 10 degrees with a 0.8 zoom, in the normalized frame (2, 3)."""
    angle = math.radians(10.0)
    cos, sin = 0.8 * math.cos(angle), 0.8 * math.sin(angle)
    return np.array([[cos, -sin, 0.02], [sin, cos, -0.03]])


def dask_image_affine(source: Any, size: int, chunk: int) -> Any:
    """``theta`` by dask-image: the same map as SciPy's (row, col) pixel-frame matrix."""
    from dask_image.ndinterp import affine_transform

    full = np.vstack([theta(), [0.0, 0.0, 1.0]])
    shape = (size, size)
    pixel = normalized_to_pixel_matrix(shape) @ full @ pixel_to_normalized_matrix(shape)
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rowcol = swap @ pixel @ swap
    return affine_transform(
        source[0, 0],
        rowcol[:2, :2],
        rowcol[:2, 2],
        output_shape=shape,
        output_chunks=(chunk, chunk),
        order=1,
        mode="grid-constant",  # interpolates towards the zero border, as grid_sample
    )


def _peak_mib() -> float:
    # ru_maxrss is KiB on Linux: the worker process's peak resident set so far
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(client: Client, name: str, build: Any) -> dict[str, Any]:
    """Restart the workers, build the lazy warp with ``build()``, compute its mean."""
    client.restart()
    idle = client.run(_peak_mib)
    print(f"\n{name}", flush=True)
    start = time.perf_counter()
    warped = build()  # geowarp.dask finds each block's input region here, on the cluster
    future = client.compute(warped.mean())
    progress(future)
    mean = float(future.result())
    seconds = time.perf_counter() - start
    peaks = client.run(_peak_mib)
    print(f"\n  mean {mean:.6f}, {seconds:.1f} s, {len(warped.dask)} tasks", flush=True)
    for worker, peak in sorted(peaks.items()):
        print(f"  {worker}: peak {peak:.0f} MiB (idle {idle[worker]:.0f} MiB)", flush=True)
    return {"name": name, "seconds": seconds, "mean": mean, "peaks": sorted(peaks.values())}


def table(size: int, chunk: int, runs: list[dict[str, Any]]) -> str:
    """The runs as a Markdown report."""
    lines = [
        f"# geowarp.dask on a {size:,} x {size:,} float32 image",
        "",
        f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}, "
        f"{platform.platform()}; `python examples/dask_gigapixel.py --size {size} "
        f"--chunk {chunk}`: LocalCluster of 2 workers x 1 thread, 2 GiB each; "
        f"{chunk} x {chunk} chunks, bilinear, zeros; the warp reduced by `.mean()`. "
        "Time covers building the graph and computing; peak memory is each worker's "
        "resident-set peak (`ru_maxrss`) after a restart.",
        "",
        "| warp | time (s) | peak memory per worker (MiB) | mean |",
        "|---|---|---|---|",
    ]
    for run in runs:
        peaks = ", ".join(f"{peak:.0f}" for peak in run["peaks"])
        lines.append(f"| {run['name']} | {run['seconds']:.1f} | {peaks} | {run['mean']:.6f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32768, help="image height and width")
    parser.add_argument("--chunk", type=int, default=2048, help="chunk height and width")
    parser.add_argument("--report", type=Path, help="write the numbers to this Markdown file")
    args = parser.parse_args(argv)
    size, chunk = args.size, args.chunk
    source = image(size, chunk)
    print(f"{size} x {size} float32 ({source.nbytes / 2**30:.2f} GiB), {chunk} x {chunk} chunks")
    peers = [
        ("tps, geowarp.dask", lambda: geowarp.dask.warp(source, spline(), chunks=chunk)),
        (
            "affine, geowarp.dask",
            lambda: geowarp.dask.warp(source, gw.Affine(theta().astype(np.float32)), chunks=chunk),
        ),
    ]
    try:
        import dask_image  # noqa: F401

        peers.append(("affine, dask_image", lambda: dask_image_affine(source, size, chunk)))
    except ImportError:
        print("dask-image is not installed: no comparison", file=sys.stderr)
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        memory_limit="2GiB",
        host="127.0.0.1",
        dashboard_address=None,
    )
    with cluster, Client(cluster) as client:
        runs = [measure(client, name, build) for name, build in peers]
    report = table(size, chunk, runs)
    print("\n" + report)
    if args.report is not None:
        args.report.write_text(report)


if __name__ == "__main__":
    main()
