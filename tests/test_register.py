"""`geowarp.register`: recovery of known warps of real photographs, batches, masks, losses."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from skimage import data
from skimage.color import rgb2gray
from skimage.transform import resize

import geowarp as gw
from geowarp.grid import normalized_to_pixel, pixel_to_normalized

PHOTOS = ("camera", "astronaut", "coffee")


@functools.cache
def _photo(name: str, size: int) -> np.ndarray:
    """The photograph's central square in grey, resized to ``size`` pixels, values in [0, 1]."""
    image = getattr(data, name)()
    image = rgb2gray(image[..., :3]) if image.ndim == 3 else image / 255.0
    height, width = image.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top : top + side, left : left + side]
    return resize(square, (size, size), anti_aliasing=True).astype(np.float64)


def _truth(family: str, seed: int) -> gw.Transform:
    """A known warp: a few degrees, a few percent of zoom, a shift (and a perspective row)."""
    rng = np.random.default_rng(seed)
    angle = math.radians(rng.uniform(-6, 6))
    scale = rng.uniform(0.96, 1.04)
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    affine = np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])
    affine[:, 2] = rng.uniform(-0.05, 0.05, 2)
    if family == "affine":
        return gw.Affine(affine)
    return gw.Projective(np.vstack([affine, [*rng.uniform(-0.06, 0.06, 2), 1.0]]))


def _pair(
    name: str, family: str, seed: int = 0, size: int = 128
) -> tuple[np.ndarray, np.ndarray, gw.Transform]:
    """(moving, fixed, truth) with ``warp(moving, truth) ~= fixed``, both (size, size).

    The fixed image is the central crop of a photograph 1.5 times larger, the
    moving one a view of the whole photograph through the truth's inverse, so
    both hold photograph everywhere.
    """
    big = _photo(name, size * 3 // 2)
    margin = size // 4
    fixed = big[margin : margin + size, margin : margin + size]
    truth = _truth(family, seed)
    moving = gw.warp(big[None, None], _to_big(size, big.shape[0]) @ truth.inverse(), (size, size))
    return moving[0, 0], np.ascontiguousarray(fixed), truth


def _to_big(size: int, big: int) -> gw.Affine:
    # from the normalized frame of the central crop to the whole photograph's
    return gw.Affine(np.array([[size / big, 0.0, 0.0], [0.0, size / big, 0.0]]))


def _corner_error(found: gw.Transform, truth: gw.Transform, size: int) -> float:
    """Largest distance (moving pixels) between where both map the fixed corner pixels."""
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], float)
    points = pixel_to_normalized(corners, (size, size))
    mapped = [
        normalized_to_pixel(np.asarray(t.apply(points), dtype=np.float64), (size, size))
        for t in (found, truth)
    ]
    return float(np.linalg.norm(mapped[0] - mapped[1], axis=-1).max())


def _numpy_transform(transform: gw.Transform, backend) -> gw.Transform:
    return type(transform)(backend.to_numpy(transform.matrix))


# A homography's perspective row needs more pixels than an affine map for the same
# corner accuracy: bilinear interpolation (of the moving image, and when it was made)
# biases the fit by a few hundredths of a pixel, more for smaller images.
SIZES = {"affine": 128, "projective": 256}


@pytest.mark.parametrize("family", ["affine", "projective"])
@pytest.mark.parametrize("name", PHOTOS)
def test_recovers_a_known_warp_of_a_photograph(name, family):
    size = SIZES[family]
    moving, fixed, truth = _pair(name, family, seed=PHOTOS.index(name), size=size)
    result = gw.register(moving, fixed, family)
    assert _corner_error(result.transform, truth, size) <= 0.05
    assert result.converged is True
    assert isinstance(result.transform, type(truth))


@pytest.mark.parametrize("family", ["affine", "projective"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_recovers_on_torch(torch_backend, family, dtype):
    size = SIZES[family]
    moving, fixed, truth = _pair("camera", family, seed=5, size=size)
    moving_t = torch_backend.asarray(moving[None, None], dtype)
    fixed_t = torch_backend.asarray(fixed[None, None], dtype)
    result = gw.register(moving_t, fixed_t, family)
    assert result.transform.matrix.dtype == moving_t.dtype
    assert tuple(result.warped.shape) == (1, 1, size, size)
    found = type(truth)(torch_backend.to_numpy(result.transform.matrix[0]))
    assert _corner_error(found, truth, size) <= 0.05


def test_every_backend_recovers_an_affine_warp(backend):
    moving, fixed, truth = _pair("camera", "affine", seed=7, size=96)
    result = gw.register(backend.asarray(moving), backend.asarray(fixed))
    assert _corner_error(_numpy_transform(result.transform, backend), truth, 96) <= 0.05
    assert tuple(result.warped.shape) == (96, 96)


def test_a_batch_equals_one_pair_at_a_time(torch_backend):
    pairs = [_pair(PHOTOS[i % 3], "affine", seed=10 + i, size=96) for i in range(4)]
    moving = torch_backend.asarray(np.stack([p[0] for p in pairs])[:, None])
    fixed = torch_backend.asarray(np.stack([p[1] for p in pairs])[:, None])
    batched = gw.register(moving, fixed)
    assert batched.transform.batch_shape == (4,)
    assert tuple(batched.loss.shape) == (4,)
    assert tuple(batched.converged.shape) == (4,)
    assert batched.loss_curve.shape == (batched.iterations, 4)
    for i in range(4):
        single = gw.register(moving[i : i + 1], fixed[i : i + 1])
        np.testing.assert_allclose(
            torch_backend.to_numpy(batched.transform.matrix[i]),
            torch_backend.to_numpy(single.transform.matrix[0]),
            atol=1e-9,
        )


def _chunked(monkeypatch, points: int) -> list[int]:
    """Build normal equations on a CPU at most ``points`` fixed pixels at a time; returns
    the list that records how many pairs each evaluation computed."""
    from geowarp.registration import _solver

    monkeypatch.setattr(_solver, "CPU_CHUNK_POINTS", points)
    sizes: list[int] = []
    original = _solver._normal_equations

    def counted(model, level, params, settings, xp):
        sizes.append(params.shape[0])
        return original(model, level, params, settings, xp)

    monkeypatch.setattr(_solver, "_normal_equations", counted)
    return sizes


@pytest.mark.parametrize("loss", ["mse", "ncc", "mi"])
def test_a_batch_in_chunks_of_one_pair_equals_the_whole_batch(monkeypatch, loss):
    # one shared fixed image and one shared mask: chunks take their pairs of the
    # batched arrays only
    pairs = [_pair("camera", "affine", seed=30 + i, size=64) for i in range(3)]
    moving = np.stack([p[0] for p in pairs])[:, None]
    fixed, mask = pairs[0][1][None, None], np.ones((64, 64), bool)
    mask[:8] = False
    whole = gw.register(moving, fixed, loss=loss, mask=mask, levels=2)
    sizes = _chunked(monkeypatch, 1)
    chunked = gw.register(moving, fixed, loss=loss, mask=mask, levels=2)
    assert sizes
    assert max(sizes) == 1
    np.testing.assert_allclose(chunked.transform.matrix, whole.transform.matrix, atol=1e-12)
    np.testing.assert_allclose(chunked.loss, whole.loss, rtol=1e-12)
    np.testing.assert_array_equal(chunked.converged, whole.converged)
    np.testing.assert_allclose(chunked.loss_curve, whole.loss_curve, rtol=1e-12)


def test_pairs_that_are_done_are_not_computed_again(monkeypatch):
    # an identical pair is done after its first step; a shifted one needs several
    moving, fixed, _ = _pair("astronaut", "affine", seed=40, size=64)
    batch = np.stack([fixed, moving, fixed, moving])[:, None]
    sizes = _chunked(monkeypatch, 64 * 64)  # one pair per chunk at the finest level
    result = gw.register(batch, np.stack([fixed] * 4)[:, None], levels=1)
    assert all(result.converged)
    assert set(sizes) == {1}
    # every iteration evaluates the pairs not yet done, and only those
    assert len(sizes) < 4 * result.iterations
    assert len(sizes) >= 2 * result.iterations


def test_a_library_that_compiles_gets_each_step_compiled_once():
    # a backend's ``compile`` op gets the pyramid, each level's equations and the
    # update; registering the same shapes again compiles nothing new, and the
    # compiled steps give what op by op gives
    from geowarp import backends

    names: list[str] = []

    def compile_op(function):
        names.append(function.func.__name__)
        return function

    moving, fixed, _ = _pair("coffee", "affine", seed=50, size=64)
    plain = gw.register(moving, fixed, levels=2)
    backends.register(backends.Backend("numpy", ops={"compile": compile_op}))
    try:
        first = gw.register(moving, fixed, levels=2)
        count = len(names)
        second = gw.register(moving, fixed, levels=2)
    finally:
        backends.unregister("numpy")
    expected = ["_equations_of_arrays", "_equations_of_arrays", "_level_arrays", "_update"]
    assert sorted(names) == expected
    assert len(names) == count
    for result in (first, second):
        np.testing.assert_array_equal(result.transform.matrix, plain.transform.matrix)
        np.testing.assert_array_equal(result.loss_curve, plain.loss_curve)


def test_jax_compiles_a_spline_registration_for_a_new_batch():
    # the spline's grid weights are kept per level shape, but never a stand-in from
    # compiling: a batch of another size compiles the same level again
    jnp = pytest.importorskip("jax.numpy")
    moving, fixed, _ = _pair("camera", "affine", seed=51, size=24)
    # started from a spline: no affine stage before it
    start = gw.ThinPlateSpline.from_params(jnp.zeros(8), control_grid=(2, 2))
    options = {"levels": 1, "initial": start, "control_grid": (2, 2), "max_iterations": 5}
    single = gw.register(jnp.asarray(moving), jnp.asarray(fixed), "tps", **options)
    pair = jnp.asarray(np.stack([moving, moving])[:, None])
    batched = gw.register(pair, jnp.asarray(fixed[None, None]), "tps", **options)
    np.testing.assert_allclose(
        np.asarray(batched.transform.source_points[1]),
        np.asarray(single.transform.source_points),
        atol=1e-5,
    )


def test_one_fixed_image_is_shared_by_a_batch_of_moving_images():
    pairs = [_pair("camera", "affine", seed=20 + i, size=96) for i in range(3)]
    moving = np.stack([p[0] for p in pairs])[:, None]
    result = gw.register(moving, pairs[0][1][None, None])
    for i, (_, _, truth) in enumerate(pairs):
        assert _corner_error(gw.Affine(result.transform.matrix[i]), truth, 96) <= 0.05


def test_a_masked_out_corruption_does_not_hurt():
    moving, fixed, truth = _pair("astronaut", "affine", seed=2, size=96)
    corrupted = fixed.copy()
    corrupted[10:50, 20:60] = np.random.default_rng(0).uniform(0, 1, (40, 40))
    mask = np.ones_like(fixed, dtype=bool)
    mask[10:50, 20:60] = False
    plain = gw.register(moving, corrupted)
    masked = gw.register(moving, corrupted, mask=mask)
    assert _corner_error(masked.transform, truth, 96) <= 0.05
    assert _corner_error(plain.transform, truth, 96) > 2 * _corner_error(
        masked.transform, truth, 96
    )


def test_pixels_that_map_outside_the_moving_image_do_not_count():
    # the moving image holds only the right part of the view: a third of the fixed image
    # maps outside it, and counting those pixels (as zeros) would pull the fit off
    moving, fixed, truth = _pair("camera", "affine", seed=4, size=96)
    part = moving[:, 32:]
    to_part = gw.Affine(np.array([[96 / 64, 0.0, -32 / 64], [0.0, 1.0, 0.0]]))
    result = gw.register(part, fixed)
    assert _corner_error(to_part.inverse() @ result.transform, truth, 96) <= 0.05
    assert result.loss < 1e-3


def test_ncc_ignores_brightness_and_contrast():
    moving, fixed, truth = _pair("coffee", "affine", seed=1, size=96)
    changed = 0.5 * moving + 0.3
    ncc = gw.register(changed, fixed, loss="ncc")
    mse = gw.register(changed, fixed, loss="mse")
    assert _corner_error(ncc.transform, truth, 96) <= 0.05
    assert _corner_error(mse.transform, truth, 96) > 0.2
    assert 0 <= ncc.loss < 0.01  # 1 - NCC


def _multimodal_pair(size: int = 128) -> tuple[np.ndarray, np.ndarray, gw.Transform]:
    """A photograph pair whose moving image is remapped non-monotonically: dark and
    bright both turn dark, so no brightness and contrast change relates the two."""
    moving, fixed, truth = _pair("camera", "affine", seed=0, size=size)
    return 4.0 * moving * (1.0 - moving), fixed, truth


def test_mutual_information_registers_another_modality():
    moving, fixed, truth = _multimodal_pair()
    mi = gw.register(moving, fixed, loss="mi")
    mse = gw.register(moving, fixed, loss="mse")
    assert _corner_error(mi.transform, truth, 128) <= 0.1  # 0.05
    assert _corner_error(mse.transform, truth, 128) > 10.0  # lost: over a hundred pixels
    assert mi.converged is True
    assert -3.0 < mi.loss < 0.0  # -MI in nats


def test_mutual_information_registers_on_torch(torch_backend):
    moving, fixed, truth = _multimodal_pair()
    result = gw.register(
        torch_backend.asarray(moving[None, None], "float32"),
        torch_backend.asarray(fixed[None, None], "float32"),
        loss="mi",
    )
    found = gw.Affine(torch_backend.to_numpy(result.transform.matrix[0]).astype(np.float64))
    assert _corner_error(found, truth, 128) <= 0.1


def test_mutual_information_gradient_matches_finite_differences():
    # -MI of an analytic image warped by affine params p, whose exact Jacobian makes
    # A^T dL/dI the exact gradient (registration's own Jacobian uses finite-difference
    # image gradients, which would blur the comparison)
    from geowarp.registration._mutual import mutual_information

    points = gw.grid.base_grid((48, 48))
    x, y = points[..., 0].reshape(-1), points[..., 1].reshape(-1)

    def pattern(u, v):  # the value and its derivatives along u and v
        bump = np.exp(-4 * (u * u + v * v))
        value = np.sin(3 * u) * np.cos(2 * v) + bump
        along_u = 3 * np.cos(3 * u) * np.cos(2 * v) - 8 * u * bump
        along_v = -2 * np.sin(3 * u) * np.sin(2 * v) - 8 * v * bump
        return value, along_u, along_v

    fixed = pattern(x, y)[0][None, None] ** 2  # another modality: squared
    moving = np.array([[[-1.2, 1.9]]])  # the moving image's range is all `mutual_information` reads

    def loss(params):
        u = (1 + params[0]) * x + params[1] * y + params[2]
        v = params[3] * x + (1 + params[4]) * y + params[5]
        value, along_u, along_v = pattern(u, v)
        jacobian = np.stack([along_u * x, along_u * y, along_u, along_v * x, along_v * y, along_v])
        weight = np.ones((1, 1, x.size))
        return mutual_information(value[None, None], fixed, moving, weight, None, 16, np), jacobian

    params = np.array([0.05, -0.1, 0.1, 0.08, -0.05, -0.1])
    (value, derivative, curvature), jacobian = loss(params)
    gradient = jacobian @ derivative[0, 0]
    step = 1e-6
    numeric = [
        (loss(params + step * e)[0][0] - loss(params - step * e)[0][0])[0] / (2 * step)
        for e in np.eye(6)
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-7, atol=1e-9)
    assert value.shape == (1,)
    assert -np.log(16) <= value[0] < 0  # -MI lies between -log(bins) and 0
    assert curvature.shape == (1, 1)
    assert curvature[0, 0] > 0


def _dense_mutual_information(warped, fixed, moving, weight, mask, bins):
    # the Parzen-window MI with every pixel's window over every bin (float64): the
    # oracle for `mutual_information`, which visits only the bins a window reaches
    def window(offset, cubic):
        size = np.abs(offset)
        if not cubic:
            return np.maximum(1 - size, 0), None
        outer, inner = np.maximum(2 - size, 0), np.maximum(1 - size, 0)
        slope = 2 * inner**2 - 0.5 * outer**2
        return (outer**3 - 4 * inner**3) / 6, np.where(offset < 0, -slope, slope)

    keep = np.broadcast_to(fixed == fixed if mask is None else mask > 0, fixed.shape)
    low = np.where(keep, fixed, np.inf).min(-1, keepdims=True)
    extent = np.where(keep, fixed, -np.inf).max(-1, keepdims=True) - low
    along_fixed = (fixed - low) * (bins - 1) / np.where(extent > 0, extent, 1)
    moving_low = moving.min(-1, keepdims=True)
    moving_extent = moving.max(-1, keepdims=True) - moving_low
    scale = (bins - 3) / np.where(moving_extent > 0, moving_extent, 1)
    along_moving = np.where(weight > 0, 1 + (warped - moving_low) * scale, 0)
    centres = np.arange(bins)
    fixed_window, _ = window(along_fixed[..., None] - centres, cubic=False)
    moving_window, slope = window(along_moving[..., None] - centres, cubic=True)
    count = weight.sum(-1, keepdims=True)
    joint = np.einsum("bcnk,bcnl->bckl", fixed_window, moving_window * weight[..., None])
    joint = joint / count[..., None]
    marginal_m, marginal_f = joint.sum(-2, keepdims=True), joint.sum(-1, keepdims=True)
    log = lambda a: np.log(np.where(a > 0, a, 1))  # noqa: E731
    information = (joint * (log(joint) - log(marginal_m) - log(marginal_f))).sum((-2, -1))
    pulled = np.einsum("bcnk,bckl,bcnl->bcn", fixed_window, log(joint) - log(marginal_m), slope)
    derivative = -pulled * weight * scale / (count * warped.shape[1])
    return -information.sum(-1) / warped.shape[1], derivative


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("bins", [4, 7, 32])
def test_mutual_information_equals_the_dense_parzen_windows(rng, bins, mask):
    # a batch of 3 pairs sharing one fixed image, 2 channels, pixels outside the moving
    # image (weight 0) and intensities at both ends of each image's range
    from geowarp.registration._mutual import mutual_information

    moving = rng.uniform(-2.0, 3.0, size=(1, 2, 300))
    warped = rng.uniform(-2.0, 3.0, size=(3, 2, 200))
    warped[:, :, :4] = [-2.0, 3.0, moving.min(), moving.max()]
    fixed = rng.normal(size=(1, 2, 200))
    weight = (rng.uniform(size=(3, 1, 200)) > 0.2).astype(float)
    weight[:, :, :4] = 1.0
    keep = (rng.uniform(size=(1, 1, 200)) > 0.3).astype(float) if mask else None
    value, derivative, curvature = mutual_information(warped, fixed, moving, weight, keep, bins, np)
    expected_value, expected_derivative = _dense_mutual_information(
        warped, fixed, moving, weight, keep, bins
    )
    np.testing.assert_allclose(value, expected_value, rtol=1e-12)
    np.testing.assert_allclose(derivative, expected_derivative, rtol=1e-10, atol=1e-14)
    assert curvature.shape == (3, 2)
    assert (curvature > 0).all()


def test_a_thin_plate_spline_fits_well_below_an_affine_map():
    fixed = _photo("camera", 96)
    rng = np.random.default_rng(3)
    bend = gw.ThinPlateSpline.from_params(rng.uniform(-0.06, 0.06, 18), control_grid=(3, 3))
    moving = gw.warp(fixed[None, None], bend, padding="border")[0, 0]
    affine = gw.register(moving, fixed, "affine")
    spline = gw.register(moving, fixed, "tps", control_grid=(3, 3))
    assert isinstance(spline.transform, gw.ThinPlateSpline)
    assert spline.loss < 0.2 * affine.loss


def test_the_initial_transform_is_used():
    # a shift of a fifth of the image: beyond reach from the identity without a pyramid
    moving, fixed, _ = _pair("camera", "affine", seed=6, size=96)
    shift = gw.Affine(np.array([[1.0, 0.0, 0.4], [0.0, 1.0, -0.3]]))
    truth = _pair("camera", "affine", seed=6, size=96)[2] @ shift
    moving = gw.warp(
        _photo("camera", 144)[None, None], _to_big(96, 144) @ truth.inverse(), (96, 96)
    )
    rough = gw.Affine(np.array([[1.0, 0.0, 0.38], [0.0, 1.0, -0.28]]))
    started = gw.register(moving[0, 0], fixed, initial=rough, levels=1)
    alone = gw.register(moving[0, 0], fixed, levels=1)
    assert _corner_error(started.transform, truth, 96) <= 0.05
    assert _corner_error(alone.transform, truth, 96) > 1.0
    as_homography = gw.register(moving[0, 0], fixed, "projective", initial=rough, levels=1)
    assert _corner_error(as_homography.transform, truth, 96) <= 0.1


def test_integer_images_are_registered_as_float32():
    moving, fixed, truth = _pair("camera", "affine", seed=8, size=96)
    to_bytes = [np.round(image * 255).astype(np.uint8) for image in (moving, fixed)]
    result = gw.register(*to_bytes)
    assert result.warped.dtype == np.float32
    assert result.transform.matrix.dtype == np.float32
    assert _corner_error(result.transform, truth, 96) <= 0.1  # 8-bit rounding


def test_the_result_reads_well_and_progress_shows(capsys):
    moving, fixed, _ = _pair("camera", "affine", size=64)
    result = gw.register(moving, fixed, progress=True)
    assert "register" in capsys.readouterr().err
    assert repr(result).startswith(
        "Registration(transform=Affine of batch (), warped shape (64, 64)"
    )
    assert isinstance(result.loss, float)
    assert result.loss_curve.shape == (result.iterations,)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"transform": "rigid"}, "transform must be one of"),
        ({"loss": "ssd"}, r"loss must be one of \('mse', 'ncc', 'mi'\)"),
        ({"loss": "mi", "bins": 3}, "bins must be an int >= 4"),
        ({"loss": "mi", "bins": 32.0}, "bins must be an int >= 4"),
        ({"bins": True}, "bins must be an int >= 4"),
        ({"levels": 0}, "levels must be an int >= 1"),
        ({"max_iterations": 2.5}, "max_iterations must be an int"),
        ({"tolerance": 0.0}, "tolerance must be a number > 0"),
        ({"mask": np.ones((5, 5))}, "mask must cover the fixed image"),
        ({"mask": np.ones((2, 2, 32, 32))}, "mask must have shape"),
        ({"control_grid": (1, 4), "transform": "tps"}, "control_grid"),
    ],
)
def test_bad_settings_are_refused_by_name(arguments, message):
    image = np.zeros((32, 32))
    with pytest.raises(gw.GeowarpValueError, match=message):
        gw.register(image, image, **arguments)


@pytest.mark.parametrize(
    ("moving_shape", "fixed_shape", "message"),
    [
        ((3, 32, 32), (32, 32), r"moving must have shape \(B, C, H, W\) or \(H, W\)"),
        ((32, 32), (1, 1, 0, 32), "fixed must not be empty"),
        ((1, 3, 32, 32), (1, 1, 32, 32), "same number of channels"),
        ((2, 1, 32, 32), (3, 1, 32, 32), "batches must match or be 1"),
    ],
)
def test_bad_images_are_refused_by_name(moving_shape, fixed_shape, message):
    with pytest.raises(gw.GeowarpValueError, match=message):
        gw.register(np.zeros(moving_shape), np.zeros(fixed_shape))


def test_an_initial_transform_of_another_family_is_refused():
    image = np.zeros((32, 32))
    with pytest.raises(gw.GeowarpTypeError, match="initial must be an Affine"):
        gw.register(image, image, initial=gw.Projective(np.eye(3)))
    with pytest.raises(gw.GeowarpTypeError, match="initial must be a geowarp Transform"):
        gw.register(image, image, initial=np.eye(3))


def _level(shape):
    from geowarp.grid import base_axes
    from geowarp.registration._models import Geometry

    xs, ys = base_axes(shape, like=np.zeros(1))
    return Geometry(shape, xs, ys[:, None], (shape[1] / 2, shape[0] / 2), False)


@pytest.mark.parametrize("vectors", [1, 3])
def test_affine_moments_equal_the_jacobian_products(rng, vectors):
    # AffineModel.products (image moments, no Jacobian) against A^T A and A^T v of `columns`
    from geowarp.registration._models import AffineModel

    gx, gy = rng.normal(size=(2, 3, 2, 5, 7))
    geometry = _level((5, 7))
    given = [rng.normal(size=(3, 2, 35)) for _ in range(vectors - 1)] + [None]
    normal, products = AffineModel().products(gx, gy, given, geometry, np)
    columns = AffineModel().columns(gx, gy, None, None, geometry, np)  # (B, C, 6, N)
    jacobian = np.swapaxes(columns, -1, -2)
    np.testing.assert_allclose(normal, columns @ jacobian, rtol=1e-12, atol=1e-12)
    for vector, product in zip(given, products, strict=True):
        expected = (
            jacobian.sum(axis=-2) if vector is None else (columns @ vector[..., None])[..., 0]
        )
        np.testing.assert_allclose(product, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("family", ["affine", "projective", "projective past the horizon", "tps"])
def test_jacobian_columns_are_the_warped_image_derivatives(rng, family):
    # column p at a pixel: the image gradient there times how the sampling point moves
    # with parameter p (central differences of the family's own grid, float64), with
    # points beyond a homography's horizon (NaN grid) left finite
    from geowarp.registration._models import AffineModel, ProjectiveModel, SplineModel

    shape = (5, 7)
    model: Any = {"affine": AffineModel(), "tps": SplineModel((3, 2))}.get(
        family, ProjectiveModel()
    )
    params = rng.normal(scale=0.05, size=(2, model.count))
    if family.endswith("horizon"):
        params[:, 6] = 1.5
    gx, gy = rng.normal(size=(2, 2, 3, *shape))
    grid = model.transform(params).sampling_grid(shape)
    geometry = _level(shape)
    columns = model.columns(gx, gy, grid, params, geometry, np)
    assert columns.shape == (2, 3, model.count, 35)
    step = 1e-6
    for p in range(model.count):
        shift = np.zeros(model.count)
        shift[p] = step
        after = model.transform(params + shift).sampling_grid(shape)
        before = model.transform(params - shift).sampling_grid(shape)
        moved = np.reshape((after - before) / (2 * step), (2, 1, 35, 2))
        expected = (
            np.reshape(gx, (2, 3, 35)) * moved[..., 0] + np.reshape(gy, (2, 3, 35)) * moved[..., 1]
        )
        finite = np.isfinite(expected)
        assert finite.any()
        assert finite.all() != family.endswith("horizon")  # the horizon crosses the frame
        np.testing.assert_allclose(columns[:, :, p][finite], expected[finite], atol=1e-6)
        assert np.isfinite(columns[:, :, p]).all()


@pytest.mark.parametrize("family", ["projective", "tps"])
def test_products_are_the_jacobian_products(rng, family):
    # `_products` (A^T A and A^T v without a matrix-vector product) against float64 einsum
    from geowarp.registration._models import ProjectiveModel, SplineModel
    from geowarp.registration._solver import _products

    model: Any = ProjectiveModel() if family == "projective" else SplineModel((3, 2))
    params = rng.normal(scale=0.05, size=(2, model.count))
    gx, gy = rng.normal(size=(2, 2, 3, 5, 7))
    grid = model.transform(params).sampling_grid((5, 7))
    geometry = _level((5, 7))
    given = [rng.normal(size=(2, 3, 35)), None]
    normal, products = _products(model, (gx, gy, grid, params), given, geometry, np)
    columns = model.columns(gx, gy, grid, params, geometry, np)
    np.testing.assert_allclose(normal, np.einsum("bcpn,bcqn->bcpq", columns, columns), rtol=1e-12)
    np.testing.assert_allclose(
        products[0], np.einsum("bcpn,bcn->bcp", columns, given[0]), rtol=1e-12
    )
    np.testing.assert_allclose(products[1], columns.sum(axis=-1), rtol=1e-12)
