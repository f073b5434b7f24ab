"""numba's compiled loops for numpy's kernels: the same values, used only once ready."""

from __future__ import annotations

import sys
import threading
import types

import numpy as np
import pytest

import geowarp as gw
from geowarp.samplers import _compiled, _numpy

numba = pytest.importorskip("numba")

PADDINGS = ("zeros", "constant", "border")  # reflection stays with numpy's chunks
SPECIAL = [np.nan, np.inf, -np.inf, 1e10, -3e38, 0.0, 1.0, -1.0, 0.25, -0.75, 1.5]


@pytest.fixture(scope="module")
def loops():
    assert _compiled.wait(timeout=300), _compiled.error()
    return _compiled.kernels()


def _settings():
    for mode in ("bilinear", "nearest"):
        for padding in PADDINGS:
            for align_corners in (False, True):
                yield mode, padding, align_corners


def _fill(rng, padding, channels, dtype):
    values = rng.normal(size=channels) if padding == "constant" else np.zeros(channels)
    return values.astype(dtype)


def _both(run, loops):
    """``run(loops)`` with numpy's chunks and with the compiled loops: identical values."""
    expected, found = run(None), run(loops)
    assert found.dtype == expected.dtype
    assert found.shape == expected.shape
    np.testing.assert_array_equal(found, expected)  # bit for bit, NaN included


@pytest.mark.parametrize(("mode", "padding", "align_corners"), list(_settings()))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["affine", "projective"])
def test_matrix_warps_equal_numpy_chunks(rng, loops, kind, dtype, mode, padding, align_corners):
    # 2 x 200 x 180 points: several parts over the cores, a batch of maps, a
    # homography whose horizon crosses the output (points behind it read the fill)
    image = rng.normal(size=(2, 3, 37, 41)).astype(dtype)
    rows = rng.normal(scale=0.3, size=(2, 3, 3)).astype(dtype)
    rows[:, :2, :2] += np.eye(2, dtype=dtype)
    rows[1, 2] = [0.9, 0.2, 0.1]  # w changes sign inside the output
    rows = rows[:, :2] if kind == "affine" else rows
    xs, ys = gw.grid.base_axes((200, 180), align_corners=align_corners, like=rows)
    fill = _fill(rng, padding, 3, dtype)
    options = {"mode": mode, "padding": padding, "align_corners": align_corners}
    _both(lambda use: _numpy.warp_matrix(image, rows, xs, ys, fill, **options, _loops=use), loops)


@pytest.mark.parametrize(("mode", "padding", "align_corners"), list(_settings()))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(2, 3, 23, 19), (3, 1, 1, 6)])
def test_grid_samples_equal_numpy_chunks(rng, loops, shape, dtype, mode, padding, align_corners):
    # far, huge, infinite and NaN coordinates, pixel centres, ties; a one-pixel axis
    image = rng.normal(size=shape).astype(dtype)
    grid = rng.uniform(-1.4, 1.4, size=(shape[0], 130, 140, 2))
    grid.reshape(-1)[: len(SPECIAL)] = SPECIAL
    grid[0, 1, : len(SPECIAL), 1] = SPECIAL
    grid = grid.astype(dtype)
    padded = _numpy._padded_planar(image, _fill(rng, padding, shape[1], dtype))
    layout = _numpy._Layout(padded.shape, padding, align_corners, grid.dtype)
    _both(lambda use: _numpy._sample_copy(padded, grid, layout, mode, use), loops)


@pytest.mark.parametrize(("mode", "padding", "align_corners"), list(_settings()))
@pytest.mark.parametrize("items", [2, 1])
def test_windows_equal_numpy_chunks(rng, loops, items, mode, padding, align_corners):
    # a read-only window of the padded copy, as geowarp.dask hands its blocks over;
    # one image item may serve every item of points
    image = rng.normal(size=(items, 2, 30, 33)).astype("float32")
    padded = _numpy._padded_planar(image, _fill(rng, padding, 2, "float32"))
    values = np.ascontiguousarray(padded[:, :, 5:27, 6:29])  # rows 4..25, columns 5..27
    values.flags.writeable = False
    grid = rng.uniform(-0.6, 0.6, size=(2, 9, 7, 2)).astype("float32")  # rows 5..24, columns 6..26
    window = ((4, 5), (30, 33))
    layout = _numpy._Layout(
        values.shape, padding, align_corners, grid.dtype, window=window, shared=items == 1
    )
    _both(lambda use: _numpy._sample_copy(values, grid, layout, mode, use, threads=False), loops)
    whole = image if items == 2 else np.broadcast_to(image, (2, *image.shape[1:]))
    fill = {"fill_value": padded[0, :, 0, 0]} if padding == "constant" else {}
    expected = gw.sample(
        whole, grid, mode=mode, padding=padding, align_corners=align_corners, **fill
    )
    np.testing.assert_array_equal(_numpy._sample_copy(values, grid, layout, mode, loops), expected)


def test_warps_run_the_loops_once_ready(rng, loops, monkeypatch):
    # numpy's backend sends a large warp and a large sample to the loops; reflection
    # and integer images stay with numpy's chunks
    calls = []

    def spy(name):
        def run(*arguments):
            calls.append(name)
            return getattr(loops, name)(*arguments)

        return run

    spies = types.SimpleNamespace(matrix_rows=spy("matrix_rows"), grid_rows=spy("grid_rows"))
    monkeypatch.setattr(_compiled._State, "kernels", spies)
    image = rng.normal(size=(1, 2, 160, 150)).astype("float32")
    matrix = np.array([[0.9, 0.2, 0.1], [-0.1, 1.1, 0.0]], dtype="float32")
    warped = gw.warp(image, gw.Affine(matrix), (170, 160))
    assert "matrix_rows" in calls
    calls.clear()
    small = gw.warp(image, gw.Affine(matrix), (28, 28))  # numpy's chunks: grid + sampler
    assert calls == ["matrix_rows"]
    np.testing.assert_array_equal(small, gw.warp(image, gw.Affine(matrix), (28, 28), native=False))
    grid = gw.Affine(matrix).sampling_grid((170, 160))
    calls.clear()
    np.testing.assert_array_equal(gw.sample(image, grid), warped)
    assert "grid_rows" in calls
    calls.clear()
    gw.sample(image, grid, padding="reflection")
    gw.sample(image.astype("int32"), grid, mode="nearest")
    assert calls == []


def _fresh_state(monkeypatch):
    loading = _compiled._State.thread  # a load an earlier large warp began must not land here
    if loading is not None and loading.is_alive():
        loading.join(timeout=300)
    for name, value in {"thread": None, "kernels": None, "error": None}.items():
        monkeypatch.setattr(_compiled._State, name, value)


def test_only_a_large_warp_starts_loading_the_loops(monkeypatch, rng):
    # a process of small warps never loads numba; the first large one starts it
    _fresh_state(monkeypatch)
    small = rng.normal(size=(1, 3, 20, 20)).astype("float32")
    gw.warp(small, gw.Affine(np.eye(2, 3, dtype="float32")), (100, 100))  # 30,000 values
    assert _compiled._State.thread is None
    large = rng.normal(size=(1, 3, 200, 200)).astype("float32")
    gw.warp(large, gw.Affine(np.eye(2, 3, dtype="float32")))  # 120,000 values
    assert _compiled._State.thread is not None
    assert _compiled.wait(timeout=300)


def test_the_environment_variable_keeps_the_loops_off(monkeypatch):
    _fresh_state(monkeypatch)
    monkeypatch.setenv("GEOWARP_NUMBA", "0")
    assert _compiled.wait(timeout=60) is False
    assert _compiled.kernels() is None
    assert _compiled.error() == "GEOWARP_NUMBA=0"


def test_without_numba_numpy_chunks_serve(monkeypatch, rng):
    _fresh_state(monkeypatch)
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    monkeypatch.delitem(sys.modules, "geowarp.samplers._numba_kernels", raising=False)
    monkeypatch.delattr(gw.samplers, "_numba_kernels", raising=False)
    assert _compiled.wait(timeout=60) is False
    assert "numba is not available" in _compiled.error()
    image = rng.normal(size=(1, 1, 200, 200)).astype("float32")
    transform = gw.Affine(np.array([[0.9, 0.2, 0.1], [-0.1, 1.1, 0.0]], dtype="float32"))
    warped = gw.warp(image, transform, (210, 190))
    np.testing.assert_array_equal(warped, gw.warp(image, transform, (210, 190), native=False))


def test_loops_that_differ_are_not_used(monkeypatch):
    _fresh_state(monkeypatch)
    monkeypatch.setattr(_numpy, "check_compiled", lambda loops: "they differ")
    assert _compiled.wait(timeout=60) is False
    assert _compiled.error() == "they differ"

    def broken(loops):
        raise RuntimeError("LLVM failed")

    _fresh_state(monkeypatch)
    monkeypatch.setattr(_numpy, "check_compiled", broken)
    assert _compiled.wait(timeout=60) is False
    assert _compiled.error() == "compiling failed: RuntimeError: LLVM failed"


def test_a_forked_child_gets_its_own_pool_and_compiles_afresh(monkeypatch, loops):
    # the child has no threads of its parent: a pool or a compilation under way
    # there would never run
    monkeypatch.setattr(_compiled._State, "pool", object())
    _compiled._after_fork()
    assert _compiled._State.pool is None
    assert _compiled.kernels() is loops  # ready loops stay
    _fresh_state(monkeypatch)
    _compiled._State.thread = threading.Thread(target=lambda: None)  # the parent's, compiling
    _compiled._after_fork()
    assert _compiled._State.thread is None
