"""Spline sampling grids from cached interpolation weights: always the spline's own map.

`ThinPlateSpline.sampling_grid` reads ``W @ source_points`` with weights kept
across calls while the target points stay the same; every test here changes
something the weights depend on and checks the grid against `apply`.
"""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest

import geowarp as gw
from geowarp._ops import content_key
from geowarp.grid import base_grid
from geowarp.transforms._tps_ops import (
    GRID_WEIGHTS,
    TPS_GRID,
    GridWeightCache,
    grid_weights,
    maps_points,
)

SHAPE = (5, 7)


def _centres() -> np.ndarray:
    xs, ys = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def _expected(backend: Any, tps: gw.ThinPlateSpline, align_corners: bool = False) -> np.ndarray:
    """The grid through `apply` at the pixel centres (the uncached path)."""
    points = np.reshape(base_grid(SHAPE, align_corners=align_corners), (-1, 2))
    mapped = backend.to_numpy(tps.apply(backend.asarray(points)))
    return np.reshape(mapped, (*mapped.shape[:-2], *SHAPE, 2))


def _grid(backend: Any, tps: gw.ThinPlateSpline, align_corners: bool = False) -> np.ndarray:
    return backend.to_numpy(tps.sampling_grid(SHAPE, align_corners=align_corners))


@pytest.fixture(autouse=True)
def _empty_cache():
    GRID_WEIGHTS.clear()
    yield
    GRID_WEIGHTS.clear()


def test_grid_follows_every_input_the_weights_depend_on(backend, rng):
    centres = backend.asarray(_centres())
    source = backend.asarray(_centres() + 0.1 * rng.normal(size=(2, 9, 2)))
    for align_corners in (False, True):
        for regularization in (0.0, 0.2):
            tps = gw.ThinPlateSpline(source, centres, regularization=regularization)
            for _ in range(2):  # the second call may come from the cache
                np.testing.assert_allclose(
                    _grid(backend, tps, align_corners),
                    _expected(backend, tps, align_corners),
                    atol=1e-12,
                )


def test_batched_centres(backend, rng):
    centres = backend.asarray(_centres() + 0.05 * rng.normal(size=(3, 9, 2)))
    source = backend.asarray(_centres() + 0.1 * rng.normal(size=(3, 9, 2)))
    tps = gw.ThinPlateSpline(source, centres)
    np.testing.assert_allclose(_grid(backend, tps), _expected(backend, tps), atol=1e-12)


def test_numpy_centres_changed_in_place(rng):
    centres = _centres()
    source = centres + 0.1 * rng.normal(size=(9, 2))
    before = gw.ThinPlateSpline(source, centres).sampling_grid(SHAPE)
    centres[4] += 0.3  # same array object, new values
    tps = gw.ThinPlateSpline(source, centres)
    after = tps.sampling_grid(SHAPE)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _expected(_NUMPY, tps), atol=1e-12)


def test_weights_are_built_once_and_reused(rng):
    centres = _centres()
    grids = []
    for _ in range(3):
        source = centres + 0.1 * rng.normal(size=(2, 9, 2))
        tps = gw.ThinPlateSpline(source, centres.copy())  # equal values suffice
        grids.append(tps.sampling_grid(SHAPE))
        assert (len(GRID_WEIGHTS), GRID_WEIGHTS.nbytes) == (1, SHAPE[0] * SHAPE[1] * 9 * 8)
    # the same spline twice gives the same grid, bit for bit, cached or not
    GRID_WEIGHTS.clear()
    np.testing.assert_array_equal(tps.sampling_grid(SHAPE), grids[-1])


def test_cache_is_bounded():
    cache = GridWeightCache(max_entries=2, max_bytes=2**20)
    centres = _centres()

    def points(n: int):
        return lambda: np.reshape(base_grid((n, n)), (-1, 2))

    for n in (4, 5, 6):
        cache(centres, points(n), ("grid", n, n), regularization=0.0)
    assert len(cache) == 2
    assert cache.nbytes == (5 * 5 + 6 * 6) * 9 * 8
    # weights over max_bytes are returned, never kept
    big = cache(centres, points(128), ("grid", 128, 128), regularization=0.0)
    assert big.shape == (9, 128 * 128)
    assert cache.nbytes <= 2**20


def test_content_key(rng):
    array = rng.normal(size=(4, 2))
    key = content_key(array, np)
    assert key == content_key(array.copy(), np)
    array[0, 0] += 1
    assert key != content_key(array, np)


def test_grid_weights_reproduce_apply(rng):
    centres = _centres()
    source = centres + 0.1 * rng.normal(size=(9, 2))
    points = rng.uniform(-1.2, 1.2, size=(11, 2))
    tps = gw.ThinPlateSpline(source, centres, regularization=0.1)
    weights = grid_weights(centres, points, regularization=0.1)
    assert weights.shape == (9, 11)
    np.testing.assert_allclose(weights.T @ source, tps.apply(points), atol=1e-12)


def test_numpy_values_do_not_depend_on_the_points_mapped_with_them(rng):
    """Each point's value is its own fixed sum: alone, in any subset, in any order."""
    centres = rng.uniform(-1, 1, size=(40, 2))
    source = centres + 0.05 * rng.normal(size=(3, 40, 2))
    tps = gw.ThinPlateSpline(source, centres, regularization=0.01)
    points = rng.uniform(-1.2, 1.2, size=(5000, 2))
    order = rng.permutation(len(points))
    weights = grid_weights(centres, points, regularization=0.01)
    mapped, _ = TPS_GRID.forward(weights, source)
    applied = tps.apply(points)
    for subset in (order[:1], order[:7], order[:1000], order):
        np.testing.assert_array_equal(tps.apply(points[subset]), applied[:, subset])
        part = grid_weights(centres, points[subset], regularization=0.01)
        np.testing.assert_array_equal(part, weights[:, subset])
        np.testing.assert_array_equal(TPS_GRID.forward(part, source)[0], mapped[:, subset])


def test_large_numpy_grids_map_their_points(rng, monkeypatch):
    """Over the weight limit a numpy grid is the spline's map in float64, and nothing is kept."""
    from geowarp.transforms import _tps_ops

    centres = _centres().astype(np.float32)
    source = (centres + 0.1 * rng.normal(size=(9, 2))).astype(np.float32)
    tps = gw.ThinPlateSpline(source, centres)
    monkeypatch.setattr(_tps_ops, "WEIGHT_LIMIT", SHAPE[0] * SHAPE[1] * 9 * 4 - 1)
    assert _tps_ops.maps_points(centres, SHAPE[0] * SHAPE[1])
    grid = tps.sampling_grid(SHAPE)
    assert grid.dtype == np.float32
    assert len(GRID_WEIGHTS) == 0
    precise = gw.ThinPlateSpline(source.astype(np.float64), centres.astype(np.float64))
    points = np.reshape(base_grid(SHAPE, like=centres), (-1, 2)).astype(np.float64)
    expected = np.reshape(precise.apply(points), (*SHAPE, 2)).astype(np.float32)
    np.testing.assert_array_equal(grid, expected)


def test_only_numpy_grids_map_their_points(backend):
    centres = backend.asarray(_centres())
    assert maps_points(centres, 2**40) == (backend.name == "numpy")
    assert not maps_points(centres, 1)


class _Numpy:
    @staticmethod
    def asarray(values: Any) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    @staticmethod
    def to_numpy(array: Any) -> np.ndarray:
        return np.asarray(array)


_NUMPY = _Numpy()


class TestTorch:
    """Torch tensors: keyed by value on the CPU, by identity and version counter elsewhere."""

    @pytest.fixture(autouse=True)
    def _torch(self, torch_backend):
        self.backend = torch_backend
        import torch

        self.torch = torch

    def _tps(self, centres, rng, **kwargs):
        source = self.torch.asarray(_centres() + 0.1 * rng.normal(size=(2, 9, 2)))
        return gw.ThinPlateSpline(source, centres, **kwargs)

    def _check(self, tps):
        for _ in range(2):  # weights built, weights reused
            np.testing.assert_allclose(
                _grid(self.backend, tps), _expected(self.backend, tps), atol=1e-12
            )

    @pytest.fixture
    def by_identity(self, monkeypatch):
        """Key CPU tensors as accelerator tensors are keyed (no CUDA here)."""
        from geowarp.transforms import _tps_ops

        def identity_key(array, xp):
            if array.requires_grad:
                return None
            return ("identity", id(array), array._version, str(array.dtype), str(array.device))

        monkeypatch.setattr(_tps_ops, "content_key", identity_key)

    def test_changed_in_place(self, rng):
        centres = self.torch.asarray(_centres())
        before = [self._tps(centres, rng).sampling_grid(SHAPE) for _ in range(2)]
        with self.torch.no_grad():
            centres[4] += 0.3
        tps = self._tps(centres, rng)
        assert not self.torch.allclose(before[1], tps.sampling_grid(SHAPE))
        self._check(tps)

    def test_identity_keys_follow_the_version_counter(self, rng, by_identity):
        centres = self.torch.asarray(_centres())
        self._check(self._tps(centres, rng))
        assert GRID_WEIGHTS.nbytes > 0
        with self.torch.no_grad():
            centres[4] += 0.3  # same tensor, new version
        self._check(self._tps(centres, rng))

    def test_identity_entries_go_with_their_tensor(self, rng, by_identity):
        centres = self.torch.asarray(_centres())
        self._check(self._tps(centres, rng))
        assert len(GRID_WEIGHTS) == 1
        del centres
        gc.collect()
        assert len(GRID_WEIGHTS) == 0
        # a new tensor, which may reuse the old id, gets its own weights
        self._check(self._tps(self.torch.asarray(_centres() * 0.5), rng))

    def test_centres_that_need_gradients_are_not_cached_and_get_none(self, rng):
        centres = self.torch.asarray(_centres()).requires_grad_(True)
        tps = self._tps(centres, rng)
        tps.source_points.requires_grad_(True)
        grid = tps.sampling_grid(SHAPE)
        assert len(GRID_WEIGHTS) == 0
        d_centres, d_source = self.torch.autograd.grad(
            (grid * grid).sum(), (centres, tps.source_points), allow_unused=True
        )
        # the kernel centres stay fixed, as in `apply`
        assert d_centres is None or not d_centres.any()
        expected = self.torch.autograd.grad(
            (tps.apply(self.torch.asarray(np.reshape(base_grid(SHAPE), (-1, 2)))) ** 2).sum(),
            tps.source_points,
        )[0]
        self.torch.testing.assert_close(d_source, expected)

    def test_gradients_through_cached_weights(self, rng):
        centres = self.torch.asarray(_centres())
        grads = []
        for _ in range(3):
            source = self.torch.asarray(_centres() + 0.1).requires_grad_(True)
            grid = gw.ThinPlateSpline(source, centres).sampling_grid(SHAPE)
            grads.append(self.torch.autograd.grad((grid**2).sum(), source)[0])
        self.torch.testing.assert_close(grads[2], grads[0])  # cached path == mapped points

    def test_inference_tensors(self, rng):
        with self.torch.inference_mode():
            centres = self.torch.asarray(_centres())
            tps = self._tps(centres, rng)
            self._check(tps)
