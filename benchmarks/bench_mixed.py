"""Registration in a process that uses numpy and torch, with BLAS's default threads.

Run from the repository root::

    python benchmarks/bench_mixed.py            # a minute or so
    python benchmarks/bench_mixed.py --quick    # smoke test

A numpy computation that leaves OpenBLAS's worker threads spinning (they
wait busily for a while after each threaded call) takes the cores from
whatever runs next; on a two-core machine a torch registration run right
after a numpy one took several times as long as alone. This benchmark keeps
that measured: for each family and loss (a homography and a thin-plate
spline by mean squares, an affine map by mutual information) and photograph
(`bench_registration.py`'s problems, 256x256 grey float32) it times,
interleaved over rounds,

* ``torch alone``: a torch registration right after another torch one;
* ``numpy``: a numpy registration;
* ``torch after numpy``: a torch registration right after that numpy one;

and reports ``torch after numpy / torch alone``, near 1 when registration
leaves no threads spinning. ``OPENBLAS_NUM_THREADS`` and the like are left
as given (the report says which were set); `bench_registration.py` pins
numpy's BLAS to one thread instead, to compare peers one at a time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_registration import PHOTOS, problem

import geowarp as gw
from geowarp.samplers import _compiled

RESULTS_DIR = Path(__file__).resolve().parent / "results"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


#: (family, loss) of the registrations timed
CASES = (("projective", "mse"), ("tps", "mse"), ("affine", "mi"))


def _seconds(moving: Any, fixed: Any, case: tuple[str, str]) -> float:
    """Wall time of one registration, default settings but the family and loss."""
    started = time.perf_counter()
    gw.register(moving, fixed, case[0], loss=case[1])
    return time.perf_counter() - started


def measure(photos: list[str], rounds: int) -> list[dict[str, Any]]:
    rows = []
    for case in CASES:
        for name in photos:
            moving, fixed, _ = problem("projective", name, seed=1)
            tensors = torch.from_numpy(moving), torch.from_numpy(fixed)
            _seconds(moving, fixed, case)  # first-use costs untimed
            _seconds(*tensors, case)
            _compiled.wait(60.0)
            alone, numpy_times, after = [], [], []
            for _ in range(rounds):
                _seconds(*tensors, case)
                alone.append(_seconds(*tensors, case))
                numpy_times.append(_seconds(moving, fixed, case))
                after.append(_seconds(*tensors, case))
            family = f"{case[0]}, {case[1]}"
            row = {
                "family": family,
                "photo": name,
                "torch_alone_seconds": statistics.median(alone),
                "numpy_seconds": statistics.median(numpy_times),
                "torch_after_numpy_seconds": statistics.median(after),
            }
            rows.append(row)
            print(
                f"{family} {name}: torch alone {1e3 * row['torch_alone_seconds']:.1f} ms, "
                f"numpy {1e3 * row['numpy_seconds']:.1f} ms, torch after numpy "
                f"{1e3 * row['torch_after_numpy_seconds']:.1f} ms"
            )
    return rows


def report(rows: list[dict[str, Any]], started: float) -> str:
    given = [f"{name}={os.environ[name]}" for name in THREAD_VARIABLES if name in os.environ]
    settings = ", ".join(given) or "none (the libraries' defaults)"
    lines = [
        "# bench_mixed",
        "",
        f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}; "
        f"geowarp {gw.__version__}; numpy {np.__version__}, torch {torch.__version__}; "
        f"{os.cpu_count()} CPU cores ({platform.machine()}); thread settings: "
        f"{settings}; "
        f"load average {os.getloadavg()[0]:.2f}; {time.perf_counter() - started:.0f} s.",
        "",
        "| family, loss | photo | torch alone (ms) | numpy (ms) | torch after numpy (ms) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row["torch_after_numpy_seconds"] / row["torch_alone_seconds"]
        lines.append(
            f"| {row['family']} | {row['photo']} | {1e3 * row['torch_alone_seconds']:.1f} | "
            f"{1e3 * row['numpy_seconds']:.1f} | "
            f"{1e3 * row['torch_after_numpy_seconds']:.1f} | {ratio:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one photo, one round: a smoke test")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    photos = list(PHOTOS[:1] if args.quick else PHOTOS)
    rows = measure(photos, 1 if args.quick else args.rounds)
    text = report(rows, started)
    print(text)
    name = "mixed.quick" if args.quick else "mixed"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{name}.md").write_text(text)
    (args.results_dir / f"{name}.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
