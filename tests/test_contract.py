"""What the built-in families promise beyond the shared contract.

The contract itself (inverse, composition law, sampling grid, broadcasting,
dtype and device, gradients, flatten) runs through `geowarp.testing` in
tests/test_testing.py; here: identities, closed-form products, parameters,
projective scale invariance, spline interpolation, and composition across
every pair of families.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import geowarp as gw


def _control_grid() -> np.ndarray:
    xs, ys = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def affine(backend: Any, rng: np.random.Generator, batch: tuple[int, ...], dtype: str) -> Any:
    matrix = np.eye(2, 3) + 0.3 * rng.normal(size=(*batch, 2, 3))
    return gw.Affine(backend.asarray(matrix, dtype))


def affine3x3(backend: Any, rng: np.random.Generator, batch: tuple[int, ...], dtype: str) -> Any:
    matrix = np.broadcast_to(np.eye(3), (*batch, 3, 3)).copy()
    matrix[..., :2, :] += 0.3 * rng.normal(size=(*batch, 2, 3))
    return gw.Affine(backend.asarray(matrix, dtype))


def projective(backend: Any, rng: np.random.Generator, batch: tuple[int, ...], dtype: str) -> Any:
    matrix = np.eye(3) + 0.1 * rng.normal(size=(*batch, 3, 3))
    return gw.Projective(backend.asarray(-2.0 * matrix, dtype))  # any scale, even negative


def tps(backend: Any, rng: np.random.Generator, batch: tuple[int, ...], dtype: str) -> Any:
    target = _control_grid()
    source = target + 0.1 * rng.normal(size=(*batch, 9, 2))
    return gw.ThinPlateSpline(backend.asarray(source, dtype), backend.asarray(target, dtype))


def composed(backend: Any, rng: np.random.Generator, batch: tuple[int, ...], dtype: str) -> Any:
    return gw.Composed(affine(backend, rng, batch, dtype), tps(backend, rng, batch, dtype))


Builder = Callable[[Any, np.random.Generator, tuple[int, ...], str], Any]
FAMILIES: dict[str, Builder] = {
    "affine": affine,
    "affine3x3": affine3x3,
    "projective": projective,
    "tps": tps,
    "composed": composed,
}
INVERTIBLE = ("affine", "affine3x3", "projective")


@pytest.fixture(params=list(FAMILIES))
def family(request: pytest.FixtureRequest) -> str:
    return request.param


def points(
    backend: Any, rng: np.random.Generator, shape: tuple[int, ...] = (7, 2), dtype: str = "float64"
) -> Any:
    return backend.asarray(rng.uniform(-1, 1, size=shape), dtype)


def test_identity(backend, rng):
    p = points(backend, rng)
    for transform in (
        gw.Affine.identity(like=p),
        gw.Projective.identity(like=p),
        gw.ThinPlateSpline(backend.asarray(_control_grid()), backend.asarray(_control_grid())),
    ):
        np.testing.assert_allclose(
            backend.to_numpy(transform.apply(p)), backend.to_numpy(p), atol=1e-12
        )


def test_identity_batch_shape(backend, rng):
    identity = gw.Affine.identity((4,), like=points(backend, rng))
    assert identity.batch_shape == (4,)
    assert tuple(identity.matrix.shape) == (4, 2, 3)


@pytest.mark.parametrize("other", list(FAMILIES))
def test_composition_is_sequential_application(fd_backend, rng, family, other):
    # every pair of families; each family's own composition law runs on every backend
    # in geowarp.testing (tests/test_testing.py)
    backend = fd_backend
    first = FAMILIES[family](backend, rng, (), "float64")
    second = FAMILIES[other](backend, rng, (), "float64")
    p = points(backend, rng)
    composed_points = (first @ second).apply(p)
    sequential = first.apply(second.apply(p))
    np.testing.assert_allclose(
        backend.to_numpy(composed_points), backend.to_numpy(sequential), atol=1e-10
    )


def test_matrix_families_compose_in_closed_form(backend, rng):
    a, b = affine(backend, rng, (), "float64"), affine(backend, rng, (), "float64")
    h = projective(backend, rng, (), "float64")
    assert type(a @ b) is gw.Affine
    assert type(a @ h) is gw.Projective
    assert type(h @ a) is gw.Projective
    assert type(a @ tps(backend, rng, (), "float64")) is gw.Composed


def test_params_round_trip(backend, rng):
    for cls, count in ((gw.Affine, 6), (gw.Projective, 8)):
        params = backend.asarray(0.1 * rng.normal(size=(4, count)))
        transform = cls.from_params(params)
        assert transform.batch_shape == (4,)
        np.testing.assert_allclose(
            backend.to_numpy(transform.as_params()), backend.to_numpy(params), atol=1e-12
        )
        p = points(backend, rng)
        zero = cls.from_params(backend.asarray(np.zeros(count))).apply(p)
        np.testing.assert_allclose(backend.to_numpy(zero), backend.to_numpy(p), atol=1e-12)


def test_projective_scale_invariance(backend, rng):
    matrix = np.eye(3) + 0.1 * rng.normal(size=(3, 3))
    p = points(backend, rng)
    reference = backend.to_numpy(gw.Projective(backend.asarray(matrix)).apply(p))
    for scale in (3.0, -0.5):
        scaled = gw.Projective(backend.asarray(scale * matrix)).apply(p)
        np.testing.assert_allclose(backend.to_numpy(scaled), reference, atol=1e-12)


def test_tps_interpolates_landmarks(backend, rng):
    target = _control_grid()
    source = target + 0.2 * rng.normal(size=(9, 2))
    spline = gw.ThinPlateSpline.from_landmarks(backend.asarray(source), backend.asarray(target))
    np.testing.assert_allclose(
        backend.to_numpy(spline.apply(backend.asarray(target))), source, atol=1e-10
    )
    smooth = gw.ThinPlateSpline.from_landmarks(
        backend.asarray(source), backend.asarray(target), regularization=10.0
    )
    residual = np.abs(backend.to_numpy(smooth.apply(backend.asarray(target))) - source).max()
    assert residual > 1e-3  # regularization trades exactness for smoothness
