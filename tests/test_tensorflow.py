"""TensorFlow: the native kernels against the portable code, gradients against torch,
``tf.test.compute_gradient``, ``tf.function`` (traces, unknown batch, XLA) and placement.

The core suite (test_contract, test_sampler_parity, ...) runs on the tensorflow
backend through conftest's fixtures; this file holds what is TensorFlow's own.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

_SELECTED = os.environ.get("GEOWARP_TEST_BACKENDS") or "tensorflow"
if "tensorflow" not in [name.strip() for name in _SELECTED.split(",")]:
    pytest.skip("tensorflow backend not selected", allow_module_level=True)
if os.environ.get("GEOWARP_REQUIRE_BACKENDS"):
    import tensorflow as tf
else:
    tf = pytest.importorskip("tensorflow")

import geowarp as gw  # noqa: E402
from _helpers import COMBINATIONS, core_op, random_grid  # noqa: E402
from geowarp._namespace import array_namespace, backend_name  # noqa: E402
from geowarp.samplers import _coordinates  # noqa: E402
from geowarp.tensorflow import _autograd, _native, _warp  # noqa: E402
from geowarp.transforms._matrix_ops import AFFINE_GRID  # noqa: E402


def _control_points() -> np.ndarray:
    xs, ys = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def _transform(family: str, params: Any, control: Any = None) -> gw.Transform:
    if family == "affine":
        return gw.Affine(params)
    if family == "projective":
        return gw.Projective(params)
    return gw.ThinPlateSpline.from_landmarks(params, control)


def _params(family: str, rng: np.random.Generator, batch: int = 2) -> np.ndarray:
    if family == "affine":
        return np.eye(2, 3) + 0.15 * rng.normal(size=(batch, 2, 3))
    if family == "projective":
        matrix = np.eye(3) + 0.1 * rng.normal(size=(batch, 3, 3))
        matrix[:, 2, :2] *= 0.5
        return matrix
    return _control_points() + 0.08 * rng.normal(size=(batch, 9, 2))


def _tf_grads(image, params, family, control, out_shape, cotangent, **options):
    with tf.GradientTape() as tape:
        tape.watch([image, params])
        out = gw.warp(image, _transform(family, params, control), out_shape, **options)
    return out, *tape.gradient(out, [image, params], output_gradients=cotangent)


def _relative(actual: Any, expected: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(actual) - expected)) / np.max(np.abs(expected)))


# --------------------------------------------------------------------------- namespace


def test_namespace_recognises_tensors_and_variables():
    xp = array_namespace(tf.zeros(2), tf.Variable([1.0]))
    assert backend_name(xp) == "tensorflow"
    with pytest.raises(gw.GeowarpTypeError, match="tensorflow arrays mixed"):
        array_namespace(tf.zeros(2), np.zeros(2))


def test_autograph_calls_geowarp_as_it_is():
    """Conversion would only cost time: seconds per trace of a tf.function calling gw.warp."""
    from tensorflow.python.autograph.impl import conversion

    array_namespace(tf.zeros(1))  # the first TF tensor registers geowarp with AutoGraph
    assert conversion.is_allowlisted(gw.warp)
    assert conversion.is_allowlisted(gw.Affine.apply)


def test_solve_broadcasts_like_the_standard(rng):
    from geowarp.tensorflow import _namespace as xp

    matrix = np.eye(4) + 0.1 * rng.normal(size=(4, 4))
    rhs = rng.normal(size=(3, 4, 2))
    expected = np.linalg.solve(matrix, rhs)
    for left, right in ((matrix, rhs), (np.broadcast_to(matrix, (3, 4, 4)), rhs[:1])):
        solved = xp.linalg.solve(tf.constant(left), tf.constant(right))
        np.testing.assert_allclose(solved.numpy(), np.linalg.solve(left, right), atol=1e-12)
    assert expected.shape == (3, 4, 2)


# --------------------------------------------------------------------------- native == portable


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
def test_native_kernels_match_portable_code(rng, mode, padding, align_corners):
    """The fast path, values and all three cotangents, against the core's forward and VJP.

    A batch of 3 is scattered in unequal parts (see ``_native._batch_parts``).
    """
    image = tf.constant(rng.normal(size=(3, 3, 5, 7)))
    grid = tf.constant(random_grid(rng, (3, 4, 6, 2)))
    grid = tf.tensor_scatter_nd_update(grid, [[0, 0, 0, 0]], [np.nan])  # NaN reads the ring
    fill = tf.constant(rng.normal(size=3) if padding == "constant" else np.zeros(3))
    cotangent = tf.constant(rng.normal(size=(3, 3, 4, 6)))
    options = {"padding": padding, "align_corners": align_corners}
    op = core_op(mode)
    expected, residuals = op.forward(image, grid, fill, **options)
    expected_grads = op.vjp(residuals, cotangent, **options)
    kernel = _native.KERNELS[op.name]
    kernel.forward_step.forget()
    kernel.backward_step.forget()
    for _ in ("op by op", "compiled"):  # a signature's first call, then its compiled steps
        with tf.GradientTape() as tape:
            tape.watch([image, grid, fill])
            out = kernel(image, grid, fill, **options)
        grads = tape.gradient(out, [image, grid, fill], output_gradients=cotangent)
        np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=0, atol=1e-12)
        for got, wanted in zip(grads, expected_grads, strict=True):
            np.testing.assert_allclose(got.numpy(), wanted.numpy(), rtol=0, atol=1e-11)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_native_false_runs_the_portable_code(rng, monkeypatch, mode):
    """``native=False`` never reaches the TF kernels, and both paths agree."""
    op = core_op(mode)
    kernel = _native.KERNELS[op.name]
    used = []
    monkeypatch.setitem(
        _native.KERNELS, op.name, lambda *args, **kwargs: used.append(1) or kernel(*args, **kwargs)
    )
    image = tf.constant(rng.normal(size=(2, 3, 5, 7)))
    grid = tf.constant(random_grid(rng, (2, 4, 6, 2)))
    results = {}
    for native in (True, False):
        with tf.GradientTape() as tape:
            tape.watch([image, grid])
            out = gw.sample(image, grid, mode=mode, padding="reflection", native=native)
            loss = tf.reduce_sum(out * out)
        results[native] = [out, *tape.gradient(loss, [image, grid])]
        assert len(used) == 1, native  # the native call only
    for got, wanted in zip(results[False], results[True], strict=True):
        np.testing.assert_allclose(got.numpy(), wanted.numpy(), rtol=0, atol=1e-11)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_int64_indices_give_the_same_result(rng, monkeypatch, mode):
    # the kernel's steps run eagerly here (not their compiled graphs, cached per shape),
    # so the index dtype is chosen anew on each run
    image = tf.constant(rng.normal(size=(2, 2, 6, 5)))
    grid = tf.constant(random_grid(rng, (2, 3, 4, 2)))
    fill = tf.zeros(2, dtype=tf.float64)
    kernel = _native.KERNELS[core_op(mode).name]
    settings = {"padding": "zeros", "align_corners": False}

    def run() -> tuple[tf.DType, list[np.ndarray]]:
        out, residuals = kernel.forward(image, grid, fill, **settings)
        cotangent = tf.constant(rng.normal(size=out.shape), dtype=out.dtype)
        grads = kernel.backward(residuals, cotangent, (2, 6, 5), **settings)
        rows = next(r for r in residuals if r.dtype.is_integer and r.shape.rank == 1)
        return rows.dtype, [t.numpy() for t in (out, *grads)]

    rng_state = rng.bit_generator.state
    narrow_dtype, narrow = run()
    assert narrow_dtype == tf.int32
    monkeypatch.setattr(_coordinates, "INT32_ROWS", 10)  # fewer rows than the 2 x 9 x 8 padded
    rng.bit_generator.state = rng_state
    wide_dtype, wide = run()
    assert wide_dtype == tf.int64
    assert _coordinates.index_dtype(_native.xp, None, narrow=True) == tf.int64  # unknown batch
    for got, expected in zip(wide, narrow, strict=True):
        np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------- against torch


@pytest.mark.parametrize("family", ["affine", "projective", "tps"])
@pytest.mark.parametrize(("dtype", "tolerance"), [("float32", 1e-5), ("float64", 1e-10)])
def test_parameter_gradients_match_torch(rng, family, dtype, tolerance):
    torch = pytest.importorskip("torch")
    image = rng.normal(size=(2, 3, 16, 20)).astype(dtype)
    params = _params(family, rng).astype(dtype)
    control = _control_points().astype(dtype)
    cotangent = rng.normal(size=(2, 3, 12, 18)).astype(dtype)
    out, d_image, d_params = _tf_grads(
        tf.constant(image),
        tf.constant(params),
        family,
        tf.constant(control),
        (12, 18),
        tf.constant(cotangent),
    )
    image_t = torch.tensor(image, requires_grad=True)
    params_t = torch.tensor(params, requires_grad=True)
    warped = gw.warp(image_t, _transform(family, params_t, torch.tensor(control)), (12, 18))
    expected = torch.autograd.grad(warped, (image_t, params_t), torch.tensor(cotangent))
    assert out.dtype == tf.as_dtype(dtype)
    assert _relative(out, warped.detach().numpy()) < tolerance
    assert _relative(d_image, expected[0].numpy()) < tolerance
    assert _relative(d_params, expected[1].numpy()) < tolerance


# --------------------------------------------------------------------------- tf.test


@pytest.mark.parametrize("padding", ["zeros", "border", "reflection", "constant"])
def test_compute_gradient(rng, padding):
    """Theoretical against numerical Jacobians, float64, w.r.t. image, matrix and fill."""
    image = tf.constant(rng.normal(size=(1, 2, 5, 6)))
    theta = tf.constant(np.array([[[0.9, 0.2, 0.13], [-0.15, 1.1, 0.07]]]))
    fills = [tf.constant([0.3, -0.7], dtype=tf.float64)] if padding == "constant" else []

    def run(image: tf.Tensor, theta: tf.Tensor, *fill: tf.Tensor) -> tf.Tensor:
        fill_value = fill[0] if fill else None
        return gw.warp(image, gw.Affine(theta), (4, 3), padding=padding, fill_value=fill_value)

    theoretical, numerical = tf.test.compute_gradient(run, [image, theta, *fills], delta=1e-6)
    for got, wanted in zip(theoretical, numerical, strict=True):
        np.testing.assert_allclose(got, wanted, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("family", ["projective", "tps"])
def test_compute_gradient_transform_params(rng, family):
    image = tf.constant(rng.normal(size=(1, 1, 6, 6)))
    control = tf.constant(_control_points())

    def run(params: tf.Tensor) -> tf.Tensor:
        return gw.warp(image, _transform(family, params, control), (3, 4))

    params = tf.constant(_params(family, rng, batch=1))
    theoretical, numerical = tf.test.compute_gradient(run, [params], delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- tf.function, XLA


def _loss_and_grads(image: tf.Tensor, theta: tf.Tensor) -> tuple[tf.Tensor, ...]:
    with tf.GradientTape() as tape:
        tape.watch([image, theta])
        loss = tf.reduce_sum(gw.warp(image, gw.Affine(theta), (6, 7)) ** 2)
    return (loss, *tape.gradient(loss, [image, theta]))


def test_tf_function_traces_once(rng):
    traces = []

    @tf.function(reduce_retracing=True)
    def step(image: tf.Tensor, theta: tf.Tensor) -> tuple[tf.Tensor, ...]:
        traces.append(1)
        return _loss_and_grads(image, theta)

    for _ in range(4):
        image = tf.constant(rng.normal(size=(2, 3, 8, 9)), dtype=tf.float32)
        theta = tf.constant(_params("affine", rng), dtype=tf.float32)
        results = step(image, theta)
        expected = _loss_and_grads(image, theta)  # op by op the first time, then compiled
        for got, wanted in zip(results, expected, strict=True):
            assert _relative(got, wanted.numpy()) < 1e-5  # float32 sums, in their own order
    assert len(traces) == 1


def test_eager_kernels_trace_once_per_shape(rng):
    image = tf.constant(rng.normal(size=(3, 2, 7, 5)))
    before = _native.bilinear.forward_step.compiled.experimental_get_tracing_count()
    for _ in range(3):
        _loss_and_grads(image, tf.constant(_params("affine", rng, batch=3)))
    assert _native.bilinear.forward_step.compiled.experimental_get_tracing_count() - before <= 1


def _traces(steps: list[_native.Step]) -> list[int]:
    return [step.compiled.experimental_get_tracing_count() for step in steps]


def _warp_steps() -> list[_native.Step]:
    """The steps of an affine bilinear warp under a tape: the grid op's and the sampler's."""
    grid_forward, grid_vjp, _ = _autograd._compiled(AFFINE_GRID, ())
    return [grid_forward, grid_vjp, _native.bilinear.forward_step, _native.bilinear.backward_step]


def test_eager_calls_compile_when_a_shape_repeats(rng):
    """A shape's first eager call runs op by op (no XLA compile to wait for); from its
    second call on, every step runs its compiled program, with the same values."""
    _autograd._compiled.cache_clear()
    for step in _native.bilinear.forward_step, _native.bilinear.backward_step:
        step.forget()
    image = tf.constant(rng.normal(size=(2, 3, 11, 10)))
    theta = tf.constant(_params("affine", rng))
    steps = _warp_steps()
    before = _traces(steps)
    first = _loss_and_grads(image, theta)
    assert _traces(steps) == before
    for _ in range(2):
        again = _loss_and_grads(image, theta)
        assert _traces(steps) == [count + 1 for count in before]
        for got, wanted in zip(again, first, strict=True):
            np.testing.assert_allclose(got.numpy(), wanted.numpy(), rtol=1e-12, atol=1e-12)


def test_step_counts_signatures():
    step = _native.Step(lambda x, scale: scale * x)
    calls = [step.runs_compiled(tf.ones(3), 2.0) for _ in range(3)]
    assert calls == [False, True, True]
    assert not step.runs_compiled(tf.ones(4), 2.0)  # a new shape
    assert not step.runs_compiled(tf.ones(3, tf.float64), 2.0)  # a new dtype
    assert not step.runs_compiled(tf.ones(3), 3.0)  # a new setting
    step.forget()
    assert not step.runs_compiled(tf.ones(3), 2.0)
    np.testing.assert_array_equal(step(tf.ones(2), 2.0).numpy(), [2.0, 2.0])


def test_user_tf_function_uses_the_compiled_kernels(rng):
    """Traced by the user, the first call of a shape already runs the compiled steps."""
    kernel = _native.bilinear
    kernel.forward_step.forget()
    image = tf.constant(rng.normal(size=(2, 3, 13, 6)))
    theta = tf.constant(_params("affine", rng))
    before = kernel.forward_step.compiled.experimental_get_tracing_count()
    traced = tf.function(_loss_and_grads)(image, theta)
    assert kernel.forward_step.compiled.experimental_get_tracing_count() == before + 1
    for got, wanted in zip(traced, _loss_and_grads(image, theta), strict=True):
        np.testing.assert_allclose(got.numpy(), wanted.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("family", ["affine", "projective", "tps", "params"])
def test_unknown_batch(rng, family):
    """A batch unknown while tracing (as in a Keras model) gives the eager results."""
    params_shape = {"affine": (2, 3), "projective": (3, 3), "tps": (9, 2), "params": (6,)}[family]
    params_spec = tf.TensorSpec((None, *params_shape), tf.float64)
    control = tf.constant(_control_points())

    def make(params: tf.Tensor) -> gw.Transform:
        if family == "params":
            return gw.Affine.from_params(params)
        return _transform(family, params, control)

    def run(image: tf.Tensor, params: tf.Tensor) -> tuple[tf.Tensor, ...]:
        with tf.GradientTape() as tape:
            tape.watch([image, params])
            out = gw.warp(image, make(params), (4, 3))
            loss = tf.reduce_sum(out**2)
        return (out, *tape.gradient(loss, [image, params]))

    traced = tf.function(
        run, input_signature=[tf.TensorSpec((None, 2, 5, 6), tf.float64), params_spec]
    )
    for batch in (1, 3):
        image = tf.constant(rng.normal(size=(batch, 2, 5, 6)))
        if family == "params":
            params = tf.constant(0.1 * rng.normal(size=(batch, 6)))
        else:
            params = tf.constant(_params(family, rng, batch))
        for got, wanted in zip(traced(image, params), run(image, params), strict=True):
            np.testing.assert_allclose(got.numpy(), wanted.numpy(), atol=1e-12)


def test_variables_are_read_where_arrays_are_taken(rng):
    """tf.Variable parameters, points and images work like tensors, gradients included."""
    theta = tf.Variable(_params("affine", rng, 2))
    image = tf.Variable(rng.normal(size=(2, 1, 5, 6)))
    points = tf.Variable(rng.normal(size=(4, 2)))
    with tf.GradientTape() as tape:
        out = gw.warp(image, gw.Affine(theta), (3, 4))
        mapped = gw.Affine.from_params(tf.Variable(tf.zeros((2, 6), tf.float64))).apply(points)
        loss = tf.reduce_sum(out**2) + tf.reduce_sum(mapped)
    d_theta, d_image = tape.gradient(loss, [theta, image])
    _, d_image_tensor, d_theta_tensor = _tf_grads(
        tf.constant(image), tf.constant(theta), "affine", None, (3, 4), 2 * out
    )
    np.testing.assert_allclose(d_theta.numpy(), d_theta_tensor.numpy(), atol=1e-12)
    np.testing.assert_allclose(d_image.numpy(), d_image_tensor.numpy(), atol=1e-12)
    tps = gw.ThinPlateSpline(tf.Variable(_control_points()), tf.Variable(_control_points()))
    np.testing.assert_allclose(tps.apply(points).numpy(), points.numpy(), atol=1e-12)


@pytest.mark.parametrize("family", ["affine", "projective", "tps", "composed"])
@pytest.mark.parametrize(("mode", "padding"), [("bilinear", "constant"), ("nearest", "border")])
def test_inference_runs_the_warp_as_one_program(rng, family, mode, padding):
    """Outside a tape the warp is one compiled program: the values of the op-by-op warp."""
    control = tf.constant(_control_points())
    image = tf.constant(rng.normal(size=(2, 3, 7, 6)))

    def transform() -> gw.Transform:
        if family == "composed":
            shift = gw.Affine(tf.constant(_params("affine", rng)))
            return shift @ _transform("tps", tf.constant(_params("tps", rng)), control)
        return _transform(family, tf.constant(_params(family, rng)), control)

    options = {
        "mode": mode,
        "padding": padding,
        "fill_value": 0.5 if padding == "constant" else None,
    }
    # as gw.warp passes them to the fast path
    settings = {**options, "fill_value": 0.5 if padding == "constant" else 0.0}
    settings = {**settings, "align_corners": False, "native": True}
    _warp._program.cache_clear()
    traces = []
    for _ in range(3):  # new parameter values: op by op, then one compiled program
        warper = transform()
        fused = gw.warp(image, warper, (5, 4), **options)
        structure = warper.flatten()[1]
        program = _warp._program(structure, (5, 4), tuple(sorted(settings.items())))
        traces.append(program.compiled.experimental_get_tracing_count())
        with tf.GradientTape():  # a recording tape: op by op
            expected = gw.warp(image, warper, (5, 4), **options)
        np.testing.assert_allclose(fused.numpy(), expected.numpy(), rtol=0, atol=1e-12)
    assert traces == [0, 1, 1]
    info = _warp._program.cache_info()
    assert (info.currsize, info.hits) == (1, 5)
    # an array fill value takes the op-by-op path, with the same result
    array_fill = gw.warp(
        image,
        warper,
        (5, 4),
        mode=mode,
        padding=padding,
        fill_value=tf.constant([0.5, 0.5, 0.5], tf.float64) if padding == "constant" else None,
    )
    np.testing.assert_allclose(array_fill.numpy(), expected.numpy(), rtol=0, atol=1e-12)


def test_inference_keeps_the_errors_of_the_op_by_op_warp():
    import array_api_strict

    image = tf.zeros((1, 1, 4, 4))
    with pytest.raises(gw.GeowarpTypeError, match="from tensorflow but transform from array_api"):
        gw.warp(image, gw.Affine(array_api_strict.eye(2, 3)))
    with pytest.raises(gw.GeowarpValueError, match="fill_value is used with padding='constant'"):
        gw.warp(image, gw.Affine(tf.eye(2, 3)), padding="border", fill_value=1.0)


@pytest.mark.parametrize("family", ["affine", "projective", "tps"])
@pytest.mark.parametrize("padding", ["zeros", "reflection", "constant"])
def test_jit_compile_matches_eager(rng, family, padding):
    image = tf.constant(rng.normal(size=(2, 3, 9, 8)), dtype=tf.float32)
    params = tf.constant(_params(family, rng), dtype=tf.float32)
    control = tf.constant(_control_points(), dtype=tf.float32)
    cotangent = tf.constant(rng.normal(size=(2, 3, 7, 10)), dtype=tf.float32)
    options = {"padding": padding, "fill_value": 0.5 if padding == "constant" else None}

    def run(image: tf.Tensor, params: tf.Tensor) -> tuple[tf.Tensor, ...]:
        return _tf_grads(image, params, family, control, (7, 10), cotangent, **options)

    compiled = tf.function(run, jit_compile=True)(image, params)
    for got, wanted in zip(compiled, run(image, params), strict=True):
        assert _relative(got, wanted.numpy()) < 1e-5  # XLA's float32 solve rounds its own way


def test_jit_compile_nearest_matches_eager(rng):
    image = tf.constant(rng.normal(size=(2, 3, 9, 8)))
    grid = tf.constant(random_grid(rng, (2, 5, 4, 2)))

    def run(image: tf.Tensor) -> tuple[tf.Tensor, ...]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            out = gw.sample(image, grid, mode="nearest", padding="border")
        return out, tape.gradient(out, image, output_gradients=tf.ones_like(out))

    compiled = tf.function(run, jit_compile=True)(image)
    for got, wanted in zip(compiled, run(image), strict=True):
        np.testing.assert_array_equal(got.numpy(), wanted.numpy())


# --------------------------------------------------------------------------- placement


def test_results_stay_on_the_inputs_device(rng):
    for device in [d.name for d in tf.config.list_logical_devices()]:
        with tf.device(device):
            image = tf.constant(rng.normal(size=(1, 1, 4, 4)), dtype=tf.float32)
            theta = tf.constant(_params("affine", rng, 1), dtype=tf.float32)
        _, d_image, d_theta = _tf_grads(image, theta, "affine", None, (3, 3), tf.ones((1, 1, 3, 3)))
        out = gw.warp(image, gw.Affine(theta))
        assert {out.device, d_image.device, d_theta.device} == {image.device}
