"""Fast paths pinned to the portable code: numpy's sampler kernels, the planar projective grid."""

from __future__ import annotations

import importlib

import array_api_compat
import numpy as np
import pytest

import geowarp as gw
from _helpers import COMBINATIONS
from geowarp import backends
from geowarp.grid import base_axes
from geowarp.samplers import _numpy, _sample
from geowarp.transforms import _matrix_ops

# far, huge, infinite and NaN coordinates, exact pixel centres and half-way ties
SPECIAL = [np.nan, np.inf, -np.inf, 1e10, -1e10, 3e38, -3e38, 0.0, 1.0, -1.0, 0.25, -0.75, 1.5]


def _grid(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    grid = rng.uniform(-1.4, 1.4, size=shape)
    flat = grid.reshape(-1)
    flat[: len(SPECIAL)] = SPECIAL  # x of the first points, y of others
    flat[-len(SPECIAL) :] = SPECIAL
    return grid.astype(dtype)


def _same(image, grid, **options):
    fast = gw.sample(image, grid, **options)
    portable = gw.sample(image, grid, native=False, **options)
    assert fast.dtype == portable.dtype
    assert fast.shape == portable.shape
    np.testing.assert_array_equal(fast, portable)  # identical, NaN included


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_kernels_match_portable_code(rng, mode, padding, align_corners, dtype):
    image = rng.normal(size=(3, 2, 5, 7)).astype(dtype)
    grid = _grid(rng, (3, 4, 6, 2), dtype)
    fill = rng.normal(size=2) if padding == "constant" else None
    _same(image, grid, mode=mode, padding=padding, align_corners=align_corners, fill_value=fill)


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
@pytest.mark.parametrize("chunk", [1, 5, 24, 100])
def test_chunks_across_items_and_rows(rng, monkeypatch, mode, padding, align_corners, chunk):
    # chunks of part of an item, of one item, of several items with a ragged last one
    monkeypatch.setattr(_numpy, "CHUNK", chunk)
    image = rng.normal(size=(5, 3, 4, 6)).astype("float32")
    grid = _grid(rng, (5, 4, 6, 2), "float32")
    _same(image, grid, mode=mode, padding=padding, align_corners=align_corners)


@pytest.mark.parametrize("exact", [50, 2000])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_index_arithmetic_beyond_float32_integers(rng, monkeypatch, exact, mode):
    # 50: a plane holds more values than float32 "holds exactly" (float64 indices);
    # 2000: planes fit, the whole copy does not (integer offsets per item)
    monkeypatch.setattr(_numpy, "FLOAT32_EXACT", exact)
    image = rng.normal(size=(4, 3, 6, 8)).astype("float32")
    _same(image, _grid(rng, (4, 5, 7, 2), "float32"), mode=mode)


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
def test_single_pixel_axes(rng, mode, padding, align_corners):
    # with align_corners=True every finite coordinate lands on the pixel; inf * 0 is NaN
    image = rng.normal(size=(2, 1, 1, 1)).astype("float32")
    _same(image, _grid(rng, (2, 3, 5, 2), "float32"), mode=mode, padding=padding,
          align_corners=align_corners)  # fmt: skip


def test_layouts_and_broadcasting(rng):
    image = rng.normal(size=(1, 3, 6, 5)).astype("float32")
    grid = _grid(rng, (4, 7, 3, 2), "float32")
    _same(image, np.transpose(grid, (0, 2, 1, 3)))  # a grid that is a strided view
    _same(image, grid[0, :, :, :])  # no batch: shared
    _same(np.broadcast_to(image, (4, 3, 6, 5)), grid)
    _same(image[:, :, ::2, :], grid)  # a strided image
    _same(np.zeros((0, 3, 6, 5), "float32"), np.zeros((0, 2, 3, 2), "float32"))
    _same(image, np.zeros((1, 0, 3, 2), "float32"))


def test_warp_on_numpy_uses_the_kernel(rng, monkeypatch):
    calls = []

    def counting(image, grid, fill, **options):
        calls.append(image.shape)
        return _numpy.bilinear(image, grid, fill, **options)

    monkeypatch.setitem(_numpy.KERNELS, "bilinear_sample", counting)
    image = rng.normal(size=(2, 3, 8, 8)).astype("float32")
    # a float64 matrix on a float32 image: the grid + sampler path (same-dtype matrix
    # warps take `warp_matrix`, pinned by test_numpy_matrix_warp_equals_sampling_the_grid)
    theta = np.array([[0.9, -0.3, 0.1], [0.3, 0.9, -0.2]], "float64")
    fast = gw.warp(image, gw.Affine(theta), (6, 7))
    assert calls == [(2, 3, 8, 8)]
    np.testing.assert_array_equal(fast, gw.warp(image, gw.Affine(theta), (6, 7), native=False))


def test_a_registered_numpy_backend_replaces_the_built_in_one():
    def mine(image, grid, fill, **options):
        raise AssertionError("not reached")

    assert _sample._native_kernel("numpy", "bilinear_sample") is _numpy.bilinear
    assert _sample._native_kernel("numpy", "nearest_sample") is _numpy.nearest
    backends.register(backends.Backend("numpy", samplers={"bilinear_sample": mine}))
    try:
        assert _sample._native_kernel("numpy", "bilinear_sample") is mine
        assert _sample._native_kernel("numpy", "nearest_sample") is None  # the portable code
    finally:
        backends.unregister("numpy")
    assert _sample._native_kernel("numpy", "bilinear_sample") is _numpy.bilinear


# --------------------------------------------------------------------------- projective grid


def _reference_forward(matrix, xs, ys, xp):
    # the (..., H, W, 3) formulation the planar one replaced
    homogeneous = _matrix_ops._separable(matrix, xs, ys, xp)
    facing, w = _matrix_ops._in_front(matrix[..., None, :, :], homogeneous, xp)
    return xp.where(facing, homogeneous[..., :2] / w, xp.nan)


def _reference_vjp(matrix, xs, ys, cotangent, xp):
    homogeneous = _matrix_ops._separable(matrix, xs, ys, xp)
    facing, w = _matrix_ops._in_front(matrix[..., None, :, :], homogeneous, xp)
    d_rows = _matrix_ops._homogeneous_cotangent(cotangent, homogeneous, facing, w, xp)
    return _matrix_ops._separable_vjp(d_rows, matrix, xs, ys, (True, True, True), xp)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_projective_grid_matches_the_homogeneous_formulation(backend, rng, dtype):
    matrix = rng.normal(size=(6, 3, 3))
    matrix[0, 2, 2] = 0.0  # the centre on the horizon
    matrix[1, 2, 2] = -abs(matrix[1, 2, 2])  # a negative centre
    matrix[2] *= -1.0  # the same map as -H
    matrix[3, 2, :2] = 0.0  # affine: nothing beyond the horizon
    xs_np, ys_np = base_axes((9, 11), like=np.zeros(1, dtype))
    arrays = [backend.asarray(a, dtype) for a in (matrix, xs_np, ys_np)]
    xp = backend.xp
    out, _ = _matrix_ops.projective_grid_forward(*arrays)
    expected = backend.to_numpy(_reference_forward(*arrays, xp))
    assert 0 < np.isnan(expected).mean() < 1
    np.testing.assert_array_equal(backend.to_numpy(out), expected)
    cotangent = backend.asarray(rng.normal(size=(6, 9, 11, 2)), dtype)
    grads = _matrix_ops.projective_grid_vjp(tuple(arrays), cotangent)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    for got, want in zip(grads, _reference_vjp(*arrays, cotangent, xp), strict=True):
        want = backend.to_numpy(want)
        scale = np.abs(want).max()
        np.testing.assert_allclose(backend.to_numpy(got), want, rtol=0, atol=tolerance * scale)


def test_torch_projective_warp_gradients_match_autograd_of_the_reference(rng):
    torch = pytest.importorskip("torch")
    image = torch.tensor(rng.normal(size=(3, 2, 10, 12)), requires_grad=True)
    matrix = rng.normal(scale=0.3, size=(3, 3, 3)) + np.eye(3)
    matrix[0, 2, :2] = (1.5, 0.5)  # part of the output beyond the horizon
    homography = torch.tensor(matrix, requires_grad=True)
    cotangent = torch.tensor(rng.normal(size=(3, 2, 7, 9)))
    out = gw.warp(image, gw.Projective(homography), (7, 9))
    grads = torch.autograd.grad(out, (image, homography), cotangent)
    xs, ys = base_axes((7, 9), like=homography)
    xp = array_api_compat.array_namespace(homography)
    grid = _reference_forward(homography, xs, ys, xp)  # plain autograd, no explicit VJP
    expected = gw.sample(image, grid)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    expected_grads = torch.autograd.grad(expected, (image, homography), cotangent)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


_WARP = importlib.import_module("geowarp._numpy_backend")  # numpy's whole-warp fast path


def _matrix_transform(rng: np.random.Generator, family: str, batch: tuple[int, ...], dtype: str):
    if family == "affine":
        matrix = np.eye(3)[:2] + rng.normal(scale=0.4, size=(*batch, 2, 3))
        return gw.Affine(matrix.astype(dtype))
    matrix = np.eye(3) + rng.normal(scale=0.6, size=(*batch, 3, 3))  # horizons cross the output
    return gw.Projective(matrix.astype(dtype))


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
@pytest.mark.parametrize("family", ["affine", "projective"])
@pytest.mark.parametrize("batch", [(), (3,)])
@pytest.mark.parametrize("chunk", [7, 2**15])
def test_numpy_matrix_warp_equals_sampling_the_grid(
    rng, monkeypatch, mode, padding, align_corners, family, batch, chunk
):
    # the whole-warp path (grid built per chunk of rows) against grid + sample, bit for bit
    monkeypatch.setattr(_numpy, "CHUNK", chunk)
    monkeypatch.setattr(_WARP, "MIN_POINTS", 1)
    calls = []
    monkeypatch.setattr(
        _WARP, "warp_matrix", lambda *a, **k: calls.append(1) or _numpy.warp_matrix(*a, **k)
    )
    for dtype in ("float32", "float64"):
        image = rng.normal(size=(3, 2, 9, 11)).astype(dtype)
        transform = _matrix_transform(rng, family, batch, dtype)
        fill = 1.5 if padding == "constant" else None
        options = {"mode": mode, "padding": padding, "align_corners": align_corners}
        for shape in [(7, 5), (12, 13), (1, 1)]:
            fast = gw.warp(image, transform, shape, fill_value=fill, **options)
            grid = transform.sampling_grid(shape, align_corners=align_corners)
            expected = gw.sample(image, grid, fill_value=fill, **options)
            assert fast.dtype == expected.dtype
            np.testing.assert_array_equal(fast, expected)
    assert len(calls) == 6  # the fast path ran


def test_numpy_matrix_warp_falls_back_where_it_does_not_apply(rng, monkeypatch):
    monkeypatch.setattr(_WARP, "warp_matrix", None)  # calling it would fail
    image = rng.normal(size=(2, 1, 6, 6))
    transform = gw.Affine(np.eye(3)[:2])
    gw.warp(image.astype("float32"), transform)  # dtype differs from the matrix's
    gw.warp(image, transform, native=False)
    gw.warp(image, transform, padding="constant", fill_value=np.array([0.5]))
    gw.warp(image[:1], gw.Affine(np.stack([np.eye(3)[:2]] * 2)))  # a shared image


# --------------------------------------------------------------------------- threads and rows


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("chunk", [40, 2**15])
def test_row_buffers_change_no_value(rng, monkeypatch, mode, chunk):
    # rows of 16 or more values run with 16-value ufunc buffers (ROW_BUFFER) here
    monkeypatch.setattr(_numpy, "ROW_BUFFER", 16)
    monkeypatch.setattr(_numpy, "CHUNK", chunk)
    monkeypatch.setattr(_WARP, "MIN_POINTS", 1)
    image = rng.normal(size=(3, 2, 9, 21)).astype("float32")
    _same(image, _grid(rng, (3, 5, 17, 2), "float32"), mode=mode)
    for family in ("affine", "projective"):
        transform = _matrix_transform(rng, family, (3,), "float32")
        grid = transform.sampling_grid((6, 18))
        expected = gw.sample(image, grid, mode=mode)
        np.testing.assert_array_equal(gw.warp(image, transform, (6, 18), mode=mode), expected)
    assert np.getbufsize() == 8192  # restored


@pytest.mark.parametrize("value", [3e38, np.inf, np.nan])
def test_affine_warps_with_overflowing_or_non_finite_matrices(rng, monkeypatch, value):
    # finite planes may sum to inf (no NaN search then); NaN or inf planes are searched
    monkeypatch.setattr(_WARP, "MIN_POINTS", 1)
    image = rng.normal(size=(2, 1, 7, 9)).astype("float32")
    matrix = (np.eye(3)[:2] + rng.normal(scale=0.3, size=(2, 2, 3))).astype("float32")
    matrix[0, :, :2] = np.float32(value)  # 3e38 x + 3e38 y: beyond float32 near the corners
    matrix[1, 0, 2] = np.float32(value)
    transform = gw.Affine(matrix)
    with np.errstate(invalid="ignore", over="ignore"):  # both grids' inf * 0 and overflow
        expected = gw.sample(image, transform.sampling_grid((5, 8)))
        found = gw.warp(image, transform, (5, 8))
    np.testing.assert_array_equal(found, expected)


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
@pytest.mark.parametrize("items", [2, 1])
def test_a_window_of_the_padded_copy_reads_what_the_whole_copy_reads(
    rng, mode, padding, align_corners, items
):
    # points over part of the image (and past its edge): the window is the rows and
    # columns they read; one image item may serve every item of points
    pytest.importorskip("dask")  # geowarp.dask's window helpers (the `dask` extra)
    from geowarp.dask._kernel import neighbour_span, pixels

    image = rng.normal(size=(items, 3, 9, 11)).astype("float32")
    grid = rng.uniform(-0.3, 1.2, size=(2, 4, 5, 2)).astype("float32")
    fill = rng.normal(size=3) if padding == "constant" else None
    options = {"mode": mode, "padding": padding, "align_corners": align_corners}
    expected = gw.sample(
        np.broadcast_to(image, (2, *image.shape[1:])),
        grid,
        **options,
        **({"fill_value": fill} if fill is not None else {}),
    )
    ring = fill if fill is not None else np.zeros(3)
    padded = _numpy._padded_planar(image, ring.astype("float32"))
    x, y = pixels(grid, (9, 11), padding, align_corners)
    (top, bottom), (left, right) = neighbour_span(y, mode), neighbour_span(x, mode)
    assert (top, left) > (-1, -1)  # a window, not the whole copy
    values = padded[:, :, top + 1 : bottom + 2, left + 1 : right + 2]
    found = _numpy.sample_window(values, grid, (top, left), (9, 11), **options)
    np.testing.assert_array_equal(found, expected)
