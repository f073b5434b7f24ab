"""numpy's sampler kernels compiled by numba, where numba is installed (the ``numba`` extra).

The compiled loops (`geowarp.samplers._numba_kernels`) give the values of
`geowarp.samplers._numpy`'s kernels bit for bit, for ``"zeros"``,
``"constant"`` and ``"border"`` padding on float32 and float64 images, and
spread the rows of a large warp over the CPU's cores. They are used once
compiled, never waited for: the first numpy warp of `START_VALUES` output
values or more starts compiling them (or loading them from numba's cache on
disk) in a background thread, and the numpy kernels serve every call until
they are ready (a process of small warps only never loads numba). A new image size never
costs a compilation, and no result depends on which code ran.

Before they are used, the compiled loops are checked against the numpy
kernels on a small warp of every kind; if numba is missing, fails or differs,
numpy's kernels stay in use (`error` says why). Setting the environment
variable ``GEOWARP_NUMBA=0`` keeps them off.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

#: Fewest output points per thread: smaller warps run on the calling thread alone.
POINTS_PER_THREAD = 2**15
#: Fewest output values of a call that starts loading the loops: smaller ones gain too
#: little to load numba for them (about 110 MiB); once loaded, the loops serve every size.
START_VALUES = 2**16
#: Floating dtypes the loops are compiled for (the image, the points and the output alike).
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class _State:
    lock = threading.Lock()
    thread: threading.Thread | None = None
    kernels: Any = None  # the compiled module, once compiled and checked
    error: str | None = None
    pool: ThreadPoolExecutor | None = None


def _after_fork() -> None:
    """A forked child has none of its parent's threads: a new lock and pool, and a
    compilation still under way in the parent starts afresh when next asked for."""
    _State.lock = threading.Lock()
    _State.pool = None
    if _State.kernels is None and _State.error is None:
        _State.thread = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def kernels(values: int = START_VALUES) -> Any:
    """The compiled loops' module when ready, else None; the first call for a warp of at
    least `START_VALUES` output ``values`` starts compiling them."""
    if _State.kernels is None and _State.thread is None and values >= START_VALUES:
        _start()
    return _State.kernels


def wait(timeout: float | None = None) -> bool:
    """Start compiling if needed and wait up to ``timeout`` s; whether the loops are in use."""
    kernels()
    thread = _State.thread
    if thread is not None:
        thread.join(timeout)
    return _State.kernels is not None


def error() -> str | None:
    """Why the compiled loops are not in use (None while compiling or once in use)."""
    return _State.error


def _start() -> None:
    with _State.lock:
        if _State.thread is not None:
            return
        if os.environ.get("GEOWARP_NUMBA", "1") == "0":
            _State.error = "GEOWARP_NUMBA=0"
            _State.thread = threading.Thread(target=lambda: None)
        else:
            _State.thread = threading.Thread(target=_compile, name="geowarp-numba", daemon=True)
        _State.thread.start()


def _compile() -> None:
    try:
        from . import _numba_kernels, _numpy

        problem = _numpy.check_compiled(_numba_kernels)
    except ImportError as exc:  # numba is not installed, or does not support this numpy
        problem = f"numba is not available: {exc}"
    except Exception as exc:  # a numba or LLVM failure must not break numpy's warps
        problem = f"compiling failed: {type(exc).__name__}: {exc}"
    if problem is None:
        _State.kernels = _numba_kernels
    else:
        _State.error = problem


def run_rows(function: Callable[..., None], args: tuple[Any, ...], rows: int, points: int) -> None:
    """``function(*args, first, stop)`` over ``rows`` rows of ``points`` output points in all,
    split into parts for the cores; the calling thread computes the first part."""
    parts = min(_cores(), rows, max(1, points // POINTS_PER_THREAD))
    if parts == 1:
        function(*args, 0, rows)
        return
    bounds = [rows * part // parts for part in range(parts + 1)]
    pool = _pool()
    futures = [pool.submit(function, *args, bounds[p], bounds[p + 1]) for p in range(1, parts)]
    function(*args, bounds[0], bounds[1])
    for future in futures:
        future.result()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _pool() -> ThreadPoolExecutor:
    with _State.lock:
        if _State.pool is None:
            _State.pool = ThreadPoolExecutor(_cores() - 1, thread_name_prefix="geowarp-rows")
        return _State.pool
