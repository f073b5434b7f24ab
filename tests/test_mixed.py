"""Mixed arrays: numpy arrays and Python sequences join the call's framework arrays.

Arrays of two different frameworks in one call are refused with an error that
names both arguments and their libraries (docs/reliability.md, "Mixed arrays").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import geowarp as gw
from _helpers import random_grid
from geowarp._namespace import array_namespace, backend_name


def _library(array: Any) -> str:
    return backend_name(array_namespace(array))


@pytest.fixture
def other(framework):
    """A second framework, different from ``framework``."""
    if framework.name != "array_api_strict":
        import array_api_strict

        return "array_api_strict", lambda values: array_api_strict.asarray(np.asarray(values))
    torch = pytest.importorskip("torch")
    return "torch", lambda values: torch.asarray(np.asarray(values))


MATRIX = np.array([[0.9, -0.2, 0.1], [0.15, 1.1, -0.05]])


def test_a_numpy_image_joins_the_transforms_library(framework, rng):
    image = rng.normal(size=(2, 3, 5, 6)).astype(np.float32)
    out = gw.warp(image, gw.Affine(framework.asarray(MATRIX)), (4, 7))
    assert _library(out) == framework.name
    assert out.dtype == framework.xp.float32  # the image's dtype, kept
    expected = gw.warp(image, gw.Affine(MATRIX), (4, 7))
    np.testing.assert_allclose(framework.to_numpy(out), expected, rtol=0, atol=1e-6)


def test_a_numpy_transform_joins_the_images_library(framework, rng):
    image = rng.normal(size=(2, 3, 5, 6))
    for transform in (
        gw.Affine(MATRIX),
        gw.Projective(np.vstack([MATRIX, [0.05, 0.0, 1.0]])),
        gw.ThinPlateSpline(rng.uniform(-1, 1, (5, 2)), rng.uniform(-1, 1, (5, 2))),
    ):
        out = gw.warp(framework.asarray(image), transform, (4, 7))
        assert _library(out) == framework.name, transform
        expected = gw.warp(image, transform, (4, 7))
        np.testing.assert_allclose(framework.to_numpy(out), expected, rtol=0, atol=1e-10)


def test_a_numpy_grid_and_a_sequence_fill_join_the_images_library(framework, rng):
    image = rng.normal(size=(1, 2, 4, 4))
    grid = random_grid(rng, (1, 3, 5, 2))
    settings = {"padding": "constant", "fill_value": [0.5, -1.0]}
    out = gw.sample(framework.asarray(image), grid, **settings)
    assert _library(out) == framework.name
    expected = gw.sample(image, grid, **settings)
    np.testing.assert_allclose(framework.to_numpy(out), expected, rtol=0, atol=1e-12)


def test_points_and_transforms_join_each_other_in_apply(framework, rng):
    points = rng.uniform(-1, 1, (4, 2))
    expected = gw.Affine(MATRIX).apply(points)
    for transform, given in (
        (gw.Affine(framework.asarray(MATRIX)), points),  # numpy points
        (gw.Affine(framework.asarray(MATRIX)), points.tolist()),  # a sequence
        (gw.Affine(MATRIX), framework.asarray(points)),  # a numpy transform
    ):
        mapped = transform.apply(given)
        assert _library(mapped) == framework.name
        np.testing.assert_allclose(framework.to_numpy(mapped), expected, rtol=0, atol=1e-12)


def test_landmarks_and_compositions_join(framework, rng):
    source, target = rng.uniform(-1, 1, (2, 5, 2))
    spline = gw.ThinPlateSpline(source, framework.asarray(target))
    assert _library(spline.source_points) == framework.name
    for composed in (
        gw.Affine(MATRIX) @ gw.Affine(framework.asarray(MATRIX)),  # a closed-form product
        gw.Affine(framework.asarray(MATRIX)) @ gw.Projective(np.eye(3)),
        gw.Affine(MATRIX) @ spline,  # a Composed
    ):
        assert all(_library(leaf) == framework.name for leaf in composed.flatten()[0]), composed


def test_sequences_alone_are_numpy():
    affine = gw.Affine([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]])
    mapped = affine.apply([[0.0, 0.0]])
    assert isinstance(mapped, np.ndarray)
    np.testing.assert_array_equal(mapped, [[0.5, 0.0]])
    out = gw.sample([[[[1.0, 2.0]]]], [[[[0.0, 0.0]]]])
    assert isinstance(out, np.ndarray)


def test_two_libraries_are_refused_naming_both_arguments(framework, other, rng):
    name, make = other
    image, grid = rng.normal(size=(1, 1, 3, 3)), random_grid(rng, (1, 2, 2, 2))
    points = rng.uniform(-1, 1, (3, 2))
    calls = {
        "image.*grid": lambda: gw.sample(framework.asarray(image), make(grid)),
        "image.*fill_value": lambda: gw.sample(
            framework.asarray(image), grid, padding="constant", fill_value=make([0.5])
        ),
        "image.*transform": lambda: gw.warp(framework.asarray(image), gw.Affine(make(MATRIX))),
        "points.*transform": lambda: gw.Affine(make(MATRIX)).apply(framework.asarray(points)),
        "source_points.*target_points": lambda: gw.ThinPlateSpline(
            framework.asarray(points), make(points)
        ),
        r"transforms\[0\].*transforms\[1\]": lambda: gw.Composed(
            gw.Affine(framework.asarray(MATRIX)), gw.Affine(make(MATRIX))
        ),
        "left.*right": lambda: gw.Affine(framework.asarray(MATRIX)) @ gw.Affine(make(MATRIX)),
    }
    for arguments, call in calls.items():
        with pytest.raises(gw.GeowarpTypeError, match=arguments) as caught:
            call()
        message = str(caught.value)
        assert framework.name in message, arguments
        assert name in message, arguments


def test_a_numpy_image_with_a_tf_variable_transform_has_gradients(rng):
    tf = pytest.importorskip("tensorflow")
    image = rng.normal(size=(2, 1, 5, 5))
    theta = tf.Variable(MATRIX)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gw.warp(image, gw.Affine(theta)) ** 2)
    got = tape.gradient(loss, theta)
    constant = tf.constant(image)
    with tf.GradientTape() as tape:
        expected_loss = tf.reduce_sum(gw.warp(constant, gw.Affine(theta)) ** 2)
    expected = tape.gradient(expected_loss, theta)
    assert got is not None
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-12)
    np.testing.assert_allclose(loss.numpy(), expected_loss.numpy(), rtol=1e-12)


def test_numpy_joins_the_device_of_a_cuda_tensor(rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    image = rng.normal(size=(1, 2, 4, 4))
    out = gw.warp(image, gw.Affine(torch.asarray(MATRIX, device="cuda")))
    assert out.device.type == "cuda"
    mapped = gw.Affine(MATRIX).apply(torch.zeros(1, 2, device="cuda"))
    assert mapped.device.type == "cuda"
