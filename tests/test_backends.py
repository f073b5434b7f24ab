"""A fourth backend joins through `geowarp.backends` alone: no change to the core.

The toy library is numpy arrays of a subclass, `Tagged`, with a namespace
whose results are `Tagged` too. Its backend brings a sampler kernel and an
autodiff wiring that count their calls, and both hooks.
"""

from __future__ import annotations

from typing import Any

import array_api_compat.numpy as np_xp
import numpy as np
import pytest

import geowarp as gw
from geowarp import backends
from geowarp.samplers import BILINEAR


class Tagged(np.ndarray):
    """The toy library's array type."""


def _tag(value: Any) -> Any:
    return value.view(Tagged) if isinstance(value, np.ndarray) else value


class _TaggedNamespace:
    """array-api-compat's numpy namespace, every array it returns a `Tagged`."""

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(np_xp, name)
        if not callable(attribute) or isinstance(attribute, type) or name in ("finfo", "iinfo"):
            return attribute

        def tagged(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            return tuple(map(_tag, result)) if isinstance(result, tuple) else _tag(result)

        return tagged


@pytest.fixture
def toy():
    """Register the toy backend; yield its call log; unregister."""
    log: dict[str, list[Any]] = {
        "kernel": [],
        "autodiff": [],
        "first_use": [],
        "families": [],
        "scatter": [],
    }

    def bilinear(image, grid, fill, *, padding, align_corners):
        log["kernel"].append((image.shape, padding))
        out, _ = BILINEAR.forward(image, grid, fill, padding=padding, align_corners=align_corners)
        return out

    def scatter_add_rows(values, indices, num_rows):
        log["scatter"].append(num_rows)
        out = np.zeros((num_rows, values.shape[1]), dtype=values.dtype)
        np.add.at(out, np.asarray(indices), np.asarray(values))
        return out.view(Tagged)

    def autodiff(op, arrays, options):
        log["autodiff"].append(op.name)
        return op.forward(*arrays, **options)[0]

    backend = backends.Backend(
        "tagged",
        autodiff=autodiff,
        samplers={"bilinear_sample": bilinear},
        ops={"scatter_add_rows": scatter_add_rows},
        on_first_use=lambda: log["first_use"].append(True),
        on_new_family=log["families"].append,
        owns=lambda array: isinstance(array, Tagged),
        namespace=_TaggedNamespace(),
    )
    backends.register(backend)
    yield log
    backends.unregister("tagged")


def test_the_core_uses_a_registered_backend(toy):
    image = np.arange(32.0).reshape(1, 2, 4, 4).view(Tagged)
    matrix = np.array([[0.8, 0.1, 0.1], [-0.1, 0.9, 0.0]]).view(Tagged)
    out = gw.warp(image, gw.Affine(matrix), (3, 5), padding="border")
    assert isinstance(out, Tagged)
    assert toy["kernel"] == [((1, 2, 4, 4), "border")]
    assert "affine_grid" in toy["autodiff"]  # the grid op went through the toy's autodiff
    assert toy["first_use"] == [True]
    plain = gw.warp(np.asarray(image), gw.Affine(np.asarray(matrix)), (3, 5), padding="border")
    np.testing.assert_allclose(np.asarray(out), plain, rtol=0, atol=1e-12)


def test_the_core_uses_a_backends_ops(toy):
    # the sampler's VJP sums the image cotangent with the backend's scatter_add_rows
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 3, 4, 5)).view(Tagged)
    grid = rng.uniform(-1.2, 1.2, size=(2, 3, 6, 2)).view(Tagged)
    fill = np.zeros(3).view(Tagged)
    cotangent = rng.normal(size=(2, 3, 3, 6)).view(Tagged)
    _, residuals = BILINEAR.forward(image, grid, fill, padding="zeros", align_corners=False)
    d_image, _, _ = BILINEAR.vjp(residuals, cotangent, padding="zeros", align_corners=False)
    assert toy["scatter"] == [2 * 7 * 8]  # one call over the padded rows
    plain = [np.asarray(a) for a in (image, grid, fill, cotangent)]
    _, plain_residuals = BILINEAR.forward(*plain[:3], padding="zeros", align_corners=False)
    expected, _, _ = BILINEAR.vjp(plain_residuals, plain[3], padding="zeros", align_corners=False)
    np.testing.assert_allclose(np.asarray(d_image), expected, rtol=0, atol=1e-12)


def test_the_first_use_hook_runs_once(toy):
    image = np.zeros((1, 1, 2, 2)).view(Tagged)
    for _ in range(3):
        gw.sample(image, np.zeros((1, 1, 1, 2)).view(Tagged))
    assert toy["first_use"] == [True]


def test_native_false_bypasses_the_kernel(toy):
    image = np.ones((1, 1, 3, 3)).view(Tagged)
    gw.sample(image, np.zeros((1, 2, 2, 2)).view(Tagged), native=False)
    assert toy["kernel"] == []
    assert toy["autodiff"] == ["bilinear_sample"]


def test_families_defined_before_and_after_reach_the_hook(toy):
    assert gw.Affine in toy["families"]  # defined before the backend was registered

    class Late(gw.Transform):
        def __init__(self, offset):
            self.offset = offset

        @property
        def batch_shape(self):
            return ()

        def apply(self, points):
            return self.validate_points(points) + self.offset

    assert toy["families"][-1] is Late


def test_numpy_joins_the_toy_library_and_another_library_is_refused(toy):
    import array_api_strict

    out = gw.sample(np.ones((1, 1, 2, 2)).view(Tagged), np.zeros((1, 1, 1, 2)))
    assert isinstance(out, Tagged)  # the numpy grid joined the toy library
    refused = "image comes from tagged but grid from array_api_strict"
    with pytest.raises(gw.GeowarpTypeError, match=refused):
        gw.sample(np.zeros((1, 1, 2, 2)).view(Tagged), array_api_strict.zeros((1, 1, 1, 2)))


def test_unregistered_arrays_are_plain_numpy_again(toy):
    backends.unregister("tagged")
    out = gw.warp(np.ones((1, 1, 2, 2)).view(Tagged), gw.Affine(np.eye(2, 3)))
    assert toy["kernel"] == []
    assert out.shape == (1, 1, 2, 2)
    assert "tagged" not in backends.loaded()


def test_register_refuses_what_is_not_a_backend():
    with pytest.raises(TypeError, match="Backend"):
        backends.register("torch")  # type: ignore[arg-type]


def test_built_in_backends_come_from_entry_points():
    from importlib import metadata

    names = {entry.name for entry in metadata.entry_points(group=backends.ENTRY_POINT_GROUP)}
    assert {"torch", "jax", "tensorflow"} <= names


def test_numpy_has_a_built_in_backend_with_the_cores_numpy_kernels():
    # numpy's fast paths are a backend like any other: found by name, no special case
    numpy_backend = backends.get("numpy")
    assert numpy_backend is not None
    assert numpy_backend.autodiff is None  # nothing to differentiate with
    assert {"bilinear_sample", "nearest_sample"} <= set(numpy_backend.samplers)
    assert numpy_backend.warp is not None
    spline_ops = {"spline_points", "spline_weights", "spline_weighted_sum"}
    assert {"scatter_add_rows", "solve", "content_key", *spline_ops} <= set(numpy_backend.ops)


def test_numpy_kernels_are_replaced_through_the_registry_and_come_back():
    import dataclasses

    built_in = backends.get("numpy")
    calls = []

    def warp(image, transform, out_shape, **settings):
        calls.append(out_shape)
        return built_in.warp(image, transform, out_shape, **settings)

    backends.register(dataclasses.replace(built_in, warp=warp))
    try:
        gw.warp(np.ones((1, 1, 4, 4)), gw.Affine(np.eye(2, 3)), (3, 3))
    finally:
        backends.unregister("numpy")
    assert calls == [(3, 3)]
    assert backends.get("numpy") is built_in  # the built-in one, on the next use
