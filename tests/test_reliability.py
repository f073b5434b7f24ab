"""The reliability rules of docs/reliability.md, on every backend."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import geowarp as gw
from conftest import _load, _selected
from geowarp.samplers import _compiled

SPECIAL = [np.nan, np.inf, -np.inf, 1e10, -1e10, 3e38, -3e38]
PADDINGS = ["zeros", "border", "reflection", "constant"]
FILL = np.array([5.0, -3.0])


def _image(rng, shape=(2, 2, 3, 4)):
    return rng.uniform(0.5, 1.5, size=shape)


def _sample(backend, image, grid, dtype="float64", **options):
    out = gw.sample(backend.asarray(image, dtype), backend.asarray(grid, dtype), **options)
    return backend.to_numpy(out)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_non_finite_and_huge_coordinates(backend, rng, mode, padding, dtype):
    """Never NaN, never a crash; NaN reads the padding value; far points read the fill."""
    image = _image(rng)
    values = np.array(SPECIAL, dtype=dtype)
    grid = np.zeros((2, len(values), 2, 2), dtype=dtype)
    grid[:, :, 0, 0] = values  # x special, y finite
    grid[:, :, 1, 1] = values  # y special, x finite
    fill = FILL if padding == "constant" else None
    out = _sample(backend, image, grid, dtype, mode=mode, padding=padding, fill_value=fill)
    assert np.isfinite(out).all()
    padding_value = FILL if padding == "constant" else np.zeros(2)
    nan_rows = out[:, :, 0, :]  # the NaN row of samples
    np.testing.assert_array_equal(
        nan_rows, np.broadcast_to(padding_value[None, :, None], nan_rows.shape)
    )
    if padding in ("zeros", "constant"):
        np.testing.assert_array_equal(
            out, np.broadcast_to(padding_value[None, :, None, None], out.shape)
        )
    reference = gw.sample(image.astype(dtype), grid, mode=mode, padding=padding, fill_value=fill)
    np.testing.assert_allclose(out, reference, rtol=1e-6)


@pytest.mark.parametrize("padding", PADDINGS)
def test_non_finite_coordinates_have_zero_gradient(autodiff_backend, rng, padding):
    from _helpers import vjp

    backend = autodiff_backend
    grid = np.zeros((1, 2, len(SPECIAL), 2))
    grid[0, 0, :, 0] = SPECIAL
    grid[0, 1, :, 1] = SPECIAL
    image = backend.asarray(_image(rng, (1, 2, 3, 4)))
    fill = backend.asarray(FILL) if padding == "constant" else None
    for native in (True, False):
        _, (d_grid,) = vjp(
            backend,
            lambda g, native=native: gw.sample(
                image, g, padding=padding, fill_value=fill, native=native
            ),
            (backend.asarray(grid),),
            backend.asarray(np.ones((1, 2, 2, len(SPECIAL)))),
        )
        d_grid = backend.to_numpy(d_grid)
        assert np.isfinite(d_grid).all()
        assert (d_grid[np.isnan(grid)] == 0).all()


def test_projective_horizon(backend, rng):
    """Points on or beyond the horizon read the fill; s * H warps as H, negative s included."""
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.5, 0.0, 1.0]])  # w = 1.5 x + 1
    image = _image(rng, (1, 2, 8, 8))
    outs = []
    for scale in (1.0, -2.0, 1e-3):
        transform = gw.Projective(backend.asarray(scale * matrix))
        outs.append(
            backend.to_numpy(
                gw.warp(backend.asarray(image), transform, padding="constant", fill_value=FILL)
            )
        )
        mapped = backend.to_numpy(
            transform.apply(backend.asarray(np.array([[-0.9, 0.0], [0.5, 0.0]])))
        )
        assert np.isnan(mapped[0]).all()
        assert np.isfinite(mapped[1]).all()
    beyond = gw.grid.base_grid((8, 8))[..., 0] * 1.5 + 1 <= 0
    assert beyond.any()
    for out in outs:
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(
            out[0][:, beyond], np.broadcast_to(FILL[:, None], (2, beyond.sum()))
        )
        np.testing.assert_allclose(out, outs[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_nan_in_image_stays_local(backend, rng, mode):
    """A NaN pixel affects exactly the outputs whose interpolation cell holds it."""
    image = _image(rng, (1, 1, 5, 6))
    image[0, 0, 2, 3] = np.nan
    pixels = rng.uniform(-0.9, 5.9, size=(1, 7, 9, 2)) * np.array([1.0, 4.9 / 5.9])
    grid = gw.grid.pixel_to_normalized(pixels, (5, 6))
    out = _sample(backend, image, grid, mode=mode)
    if mode == "bilinear":
        x0, y0 = np.floor(pixels[..., 0]), np.floor(pixels[..., 1])
        touches = np.isin(x0, [2, 3]) & np.isin(y0, [1, 2])
    else:
        touches = (np.round(pixels[..., 0]) == 3) & (np.round(pixels[..., 1]) == 2)
    np.testing.assert_array_equal(np.isnan(out[:, 0]), touches)


def test_single_pixel_axes_align_corners(backend, rng):
    for shape in [(1, 1), (1, 5), (4, 1)]:
        image = _image(rng, (1, 2, *shape))
        grid = rng.uniform(-1, 1, size=(1, 3, 3, 2))
        for padding in PADDINGS:
            out = _sample(backend, image, grid, padding=padding, align_corners=True)
            assert np.isfinite(out).all(), padding
            if shape == (1, 1):  # every point lands on the one pixel, whatever the padding
                np.testing.assert_allclose(out, np.broadcast_to(image, out.shape), err_msg=padding)


def test_nearest_ties_round_to_even(backend):
    """Half-way coordinates (exact in binary) take the even pixel on every backend."""
    image = np.arange(8.0).reshape(1, 1, 1, 8)
    grid = np.array([[-0.75, 0.0], [-0.5, 0.0], [-0.25, 0.0], [0.0, 0.0], [0.25, 0.0]])
    out = _sample(backend, image, grid[None, None], mode="nearest")  # pixels 0.5, ..., 4.5
    np.testing.assert_array_equal(out[0, 0, 0], [0.0, 2.0, 2.0, 4.0, 4.0])


@pytest.mark.parametrize(
    ("batch", "channels", "out_shape"),
    [(0, 2, (3, 3)), (2, 0, (3, 3)), (2, 2, (0, 3)), (2, 2, (3, 0))],
)
def test_empty_sizes(backend, rng, batch, channels, out_shape):
    image = backend.asarray(np.zeros((batch, channels, 4, 5)))
    for mode in ("bilinear", "nearest"):
        out = gw.warp(image, gw.Affine(backend.asarray(np.eye(2, 3))), out_shape, mode=mode)
        assert tuple(out.shape) == (batch, channels, *out_shape)


def test_dtypes(backend, rng):
    grid = rng.uniform(-1, 1, size=(1, 3, 3, 2))
    for dtype in ("float32", "float64"):
        out = gw.sample(backend.asarray(_image(rng), dtype), backend.asarray(grid, dtype))
        assert out.dtype == backend.asarray(np.zeros(1), dtype).dtype
    # a float32 image stays float32 whatever the grid's precision
    out = gw.sample(backend.asarray(_image(rng), "float32"), backend.asarray(grid, "float64"))
    assert out.dtype == backend.asarray(np.zeros(1), "float32").dtype
    integers = rng.integers(0, 255, size=(2, 2, 3, 4)).astype("uint8")
    nearest = gw.sample(backend.asarray(integers, "uint8"), backend.asarray(grid), mode="nearest")
    assert nearest.dtype == backend.asarray(integers, "uint8").dtype
    reference = gw.sample(integers.astype(float), grid, mode="nearest")
    np.testing.assert_array_equal(backend.to_numpy(nearest), reference.astype("uint8"))
    bilinear = gw.sample(backend.asarray(integers, "uint8"), backend.asarray(grid))
    assert bilinear.dtype == backend.asarray(np.zeros(1), "float32").dtype
    wide = gw.sample(backend.asarray(integers, "int32"), backend.asarray(grid))
    assert wide.dtype == backend.asarray(np.zeros(1), "float64").dtype


def test_half_precision_images(backend, rng):
    if backend.name == "array_api_strict":
        pytest.skip("array-api-strict has no float16")
    image = _image(rng)
    grid = rng.uniform(-1, 1, size=(2, 3, 3, 2))
    out = gw.sample(backend.asarray(image, "float16"), backend.asarray(grid, "float16"))
    assert out.dtype == backend.asarray(np.zeros(1), "float16").dtype
    # coordinates are computed in float32, so only the final rounding to float16 differs
    expected = gw.sample(
        image.astype("float16").astype("float32"), grid.astype("float16").astype("float32")
    )
    np.testing.assert_allclose(backend.to_numpy(out).astype("float32"), expected, rtol=2e-3)


def test_gradients_keep_the_primal_dtype(autodiff_backend, rng):
    from _helpers import vjp

    backend = autodiff_backend
    image = backend.asarray(_image(rng), "float32")
    theta = backend.asarray(np.eye(2, 3) + 0.1 * rng.normal(size=(2, 2, 3)), "float32")
    for native in (True, False):
        _, grads = vjp(
            backend,
            lambda i, t, native=native: gw.warp(i, gw.Affine(t), native=native),
            (image, theta),
            backend.asarray(np.ones((2, 2, 3, 4)), "float32"),
        )
        assert all(g.dtype == image.dtype for g in grads)


def test_inputs_are_never_mutated(backend, rng):
    image_np, theta_np = _image(rng), np.eye(2, 3) + 0.1 * rng.normal(size=(2, 2, 3))
    if backend.name == "numpy":
        image_np.setflags(write=False)
        theta_np.setflags(write=False)
    image, theta = backend.asarray(image_np), backend.asarray(theta_np)
    before = (backend.to_numpy(image).copy(), backend.to_numpy(theta).copy())
    for padding in PADDINGS:
        fill = 1.0 if padding == "constant" else None
        gw.warp(image, gw.Affine(theta), (5, 5), padding=padding, fill_value=fill)
    np.testing.assert_array_equal(backend.to_numpy(image), before[0])
    np.testing.assert_array_equal(backend.to_numpy(theta), before[1])
    grid_np = np.array([[[[np.nan, 0.0], [3e38, 0.5]]]]).repeat(2, axis=0)
    grid = backend.asarray(grid_np)
    for padding in PADDINGS:
        for native in (True, False):
            gw.sample(image, grid, padding=padding, native=native)
    np.testing.assert_array_equal(backend.to_numpy(grid), grid_np)


def test_deterministic_and_independent_of_batch(backend, rng):
    image = _image(rng, (3, 2, 6, 7))
    grid = rng.uniform(-1.2, 1.2, size=(3, 4, 5, 2))
    first = _sample(backend, image, grid)
    if backend.name == "tensorflow":  # a shape's first call runs op by op, later ones compiled
        again = _sample(backend, image, grid)
        np.testing.assert_allclose(again, first, rtol=1e-14, atol=1e-15)
        first = again
    np.testing.assert_array_equal(first, _sample(backend, image, grid))
    for item in range(3):
        arrays = (image[item : item + 1], grid[item : item + 1])
        alone = _sample(backend, *arrays)
        if backend.name == "tensorflow":  # compare compiled with compiled
            alone = _sample(backend, *arrays)
        np.testing.assert_array_equal(alone[0], first[item])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    coordinates=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=32), st.floats(-2.5, 2.5, width=32)
        ),
        min_size=8,
        max_size=8,
    ),
    padding=st.sampled_from(PADDINGS),
    mode=st.sampled_from(["bilinear", "nearest"]),
    align_corners=st.booleans(),
)
@example(
    coordinates=[0.0, -1.0, 1.0, 0.25, -0.25, 1.0 / 3, -1.0 / 3, 0.5],
    padding="zeros",
    mode="bilinear",
    align_corners=False,
)
# XLA's CPU min/max drop NaN: a NaN coordinate once read a pixel under XLA
@example(
    coordinates=[0.0] * 7 + [math.nan], padding="reflection", mode="bilinear", align_corners=False
)
@example(coordinates=[0.0] * 7 + [math.nan], padding="border", mode="nearest", align_corners=True)
def test_every_backend_agrees_with_numpy(other_backend, coordinates, padding, mode, align_corners):
    backend = other_backend
    image = np.linspace(0.5, 2.0, 2 * 2 * 3 * 5).reshape(2, 2, 3, 5)
    grid = np.asarray(coordinates, dtype="float32").reshape(2, 1, 2, 2)
    fill = FILL if padding == "constant" else None
    options = {"mode": mode, "padding": padding, "align_corners": align_corners, "fill_value": fill}
    out = _sample(backend, image, grid, "float32", **options)
    expected = gw.sample(image.astype("float32"), grid, **options)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.fixture(params=[name for name in _selected() if name != "numpy"])
def other_backend(request: pytest.FixtureRequest) -> Any:
    """Each selected library but numpy, the reference it is compared with."""
    return _load(request.param)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


# 3,000 measured calls where a call is cheap (1,000 elsewhere), after 1,000 warm-up calls.
# Bounds: 32 bytes of Python allocations per call (256 where the library's own caches
# churn: TensorFlow's tracing bookkeeping, array-api-strict), and 32 MiB of resident memory.
CALLS = {"numpy": 3_000, "torch": 3_000, "jax": 3_000}
BYTES_PER_CALL = {"numpy": 32, "torch": 32, "jax": 32}


def test_no_memory_growth_over_many_calls(backend):
    """Thousands of warps of varying shapes: no growth in Python allocations or resident memory."""
    calls = CALLS.get(backend.name, 1_000)
    rng = np.random.default_rng(0)
    images = [backend.asarray(rng.normal(size=(1, 1, h, h)), "float32") for h in (3, 4, 5, 6)]
    theta = gw.Affine(backend.asarray(np.eye(2, 3), "float32"))

    def run(count):
        for index in range(count):
            gw.warp(images[index % 4], theta, (2 + index % 5, 3))

    run(1000)  # every shape seen many times: library caches are warm
    loading = _compiled._State.thread  # numba's loops, if an earlier large warp began loading
    if loading is not None:
        loading.join(timeout=300)  # them: their one-off memory is not this test's growth
    tracemalloc.start()
    resident = _resident_bytes()
    baseline, _ = tracemalloc.get_traced_memory()
    run(calls)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert current - baseline < BYTES_PER_CALL.get(backend.name, 256) * calls
    assert _resident_bytes() - resident < 32 * 2**20


def test_arrays_on_different_devices_are_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(gw.GeowarpValueError, match="one device"):
        gw.sample(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 2, 2, device="meta"))


def test_out_shape_too_large_fails_before_allocating():
    with pytest.raises(gw.GeowarpValueError, match=r"would need [\d,]+ bytes"):
        gw.warp(np.zeros((2, 3, 4, 4)), gw.Affine(np.eye(2, 3)), (100_000, 100_000))


def test_empty_spatial_input_is_refused():
    with pytest.raises(gw.GeowarpValueError, match="non-empty spatial size"):
        gw.sample(np.zeros((1, 1, 0, 4)), np.zeros((1, 2, 2, 2)))


SINGULAR_TARGET = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
COLLINEAR_TARGET = np.array([[0.0, 0.0], [0.1, 0.3], [0.2, 0.6], [0.3, 0.9]])


def _singular_spline_warp(source: Any, target: Any, image: Any) -> Any:
    spline = gw.ThinPlateSpline(source, target)
    return gw.warp(image, spline, (3, 4), padding="constant", fill_value=7.0)


@pytest.mark.parametrize("target", [SINGULAR_TARGET, COLLINEAR_TARGET], ids=["dup", "line"])
def test_a_traced_singular_spline_reads_the_padding(autodiff_backend, target):
    """Values unknown while tracing: the non-finite grid reads the fill value, no error."""
    backend = autodiff_backend
    source, target = backend.asarray(SINGULAR_TARGET[[0, 1, 3, 2]]), backend.asarray(target)
    image = backend.asarray(np.ones((1, 2, 4, 4)))
    if backend.name == "jax":
        import jax

        traced = jax.jit(_singular_spline_warp)
    elif backend.name == "tensorflow":
        import tensorflow as tf

        traced = tf.function(_singular_spline_warp)
    else:
        import torch

        import geowarp.torch  # noqa: F401 - registers the backend outside the compiled code

        traced = torch.compile(_singular_spline_warp, backend="aot_eager", fullgraph=True)
    out = backend.to_numpy(traced(source, target, image))
    np.testing.assert_array_equal(out, np.full((1, 2, 3, 4), 7.0))
    with pytest.raises(gw.GeowarpValueError, match=r"coincide|one line"):  # values known eagerly
        _singular_spline_warp(source, target, image)


def test_the_portable_solve_gives_nan_for_singular_items_only():
    from geowarp._ops import solve

    systems = np.stack([np.eye(3), np.zeros((3, 3)), 2 * np.eye(3)])
    out = solve(systems, np.ones((3, 2)), np)
    np.testing.assert_array_equal(out[0], np.ones((3, 2)))
    assert np.isnan(out[1]).all()
    np.testing.assert_array_equal(out[2], np.full((3, 2), 0.5))


def test_regularization_allows_coinciding_spline_centres(backend):
    source = backend.asarray(SINGULAR_TARGET[[0, 1, 3, 2]])
    spline = gw.ThinPlateSpline(source, backend.asarray(SINGULAR_TARGET), regularization=0.1)
    assert np.isfinite(backend.to_numpy(spline.sampling_grid((3, 3)))).all()
