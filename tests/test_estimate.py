"""Estimation from point correspondences: exact recovery, peers, degenerate input, gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import geowarp as gw

AFFINE = np.array([[1.1, 0.2, 0.05], [-0.15, 0.9, -0.1]])
HOMOGRAPHY = np.array([[1.05, 0.1, 0.05], [-0.08, 0.95, 0.1], [0.15, -0.1, 1.0]])
FAMILIES = {"affine": (gw.Affine, AFFINE), "projective": (gw.Projective, HOMOGRAPHY)}


def _points(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, (*shape, 2))


def _tolerance(dtype: str) -> float:
    return 1e-9 if dtype == "float64" else 2e-5


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("family", ["affine", "projective"])
def test_noise_free_points_give_the_transform_back(backend, rng, family, dtype):
    cls, matrix = FAMILIES[family]
    target = _points(rng, 3, 20)
    source = cls(matrix).apply(target)
    fit = cls.from_estimate(backend.asarray(source, dtype), backend.asarray(target, dtype))
    assert fit, getattr(fit, "message", "")
    assert dtype in str(fit.dtype)
    assert fit.batch_shape == (3,)
    found = backend.to_numpy(fit.matrix)
    np.testing.assert_allclose(found, np.broadcast_to(matrix, found.shape), atol=_tolerance(dtype))
    residuals = backend.to_numpy(gw.estimate.residuals(fit, source, target))
    assert residuals.shape == (3, 20)
    assert residuals.max() < 10 * _tolerance(dtype)


def test_thin_plate_spline_is_the_constructor_plus_checks(backend, rng):
    target, source = _points(rng, 6), _points(rng, 6)
    fit = gw.ThinPlateSpline.from_estimate(
        backend.asarray(source), backend.asarray(target), regularization=0.1
    )
    plain = gw.ThinPlateSpline(source, target, regularization=0.1)
    probe = _points(rng, 5)
    np.testing.assert_allclose(
        backend.to_numpy(fit.apply(backend.asarray(probe))), plain.apply(probe), atol=1e-12
    )


@pytest.mark.parametrize("family", ["affine", "projective"])
def test_point_order_does_not_matter(rng, family):
    cls, matrix = FAMILIES[family]
    target = _points(rng, 30)
    source = cls(matrix).apply(target) + rng.normal(0, 0.01, (30, 2))
    order = rng.permutation(30)
    first = cls.from_estimate(source, target).matrix
    np.testing.assert_allclose(
        cls.from_estimate(source[order], target[order]).matrix, first, atol=1e-12
    )


@pytest.mark.parametrize("family", ["affine", "projective"])
def test_a_batch_equals_the_fits_one_at_a_time(backend, rng, family):
    cls, matrix = FAMILIES[family]
    target = _points(rng, 2, 3, 12)
    source = cls(matrix).apply(target) + rng.normal(0, 0.02, target.shape)
    batched = backend.to_numpy(
        cls.from_estimate(backend.asarray(source), backend.asarray(target)).matrix
    )
    for index in np.ndindex(2, 3):
        one = cls.from_estimate(source[index], target[index]).matrix
        np.testing.assert_allclose(batched[index], one, atol=1e-10)


@pytest.mark.parametrize("family", ["affine", "projective"])
def test_batch_shapes_broadcast(backend, rng, family):
    # one point set (or set of weights) shared by a batch of the other
    cls, matrix = FAMILIES[family]
    target = _points(rng, 3, 12)
    source = cls(matrix).apply(target) + rng.normal(0, 0.02, target.shape)
    weights = rng.uniform(0.5, 2.0, (4, 1, 12))
    cases = [(source[:1], target, None), (source, target[1], None), (source, target, weights)]
    for source_points, target_points, weights_or_none in cases:
        arrays = [backend.asarray(source_points), backend.asarray(target_points)]
        if weights_or_none is not None:
            arrays.append(backend.asarray(weights_or_none))
        fit = backend.to_numpy(cls.from_estimate(*arrays).matrix)
        shape = np.broadcast_shapes(
            source_points.shape[:-2],
            target_points.shape[:-2],
            () if weights_or_none is None else weights_or_none.shape[:-1],
        )
        assert fit.shape[:-2] == shape
        for index in np.ndindex(shape):
            one = cls.from_estimate(
                np.broadcast_to(source_points, (*shape, 12, 2))[index],
                np.broadcast_to(target_points, (*shape, 12, 2))[index],
                None
                if weights_or_none is None
                else np.broadcast_to(weights_or_none, (*shape, 12))[index],
            ).matrix
            np.testing.assert_allclose(fit[index], one, atol=1e-10)


@pytest.mark.parametrize("family", ["affine", "projective"])
def test_weights(rng, family):
    cls, matrix = FAMILIES[family]
    target = _points(rng, 12)
    source = cls(matrix).apply(target)
    noisy = source + rng.normal(0, 0.02, source.shape)
    corrupted = source.copy()
    corrupted[3] += 5.0
    weights = np.ones(12)
    weights[3] = 0.0
    ignored = cls.from_estimate(corrupted, target, weights).matrix
    np.testing.assert_allclose(ignored, matrix, atol=1e-10)  # a zero weight ignores the point
    np.testing.assert_allclose(
        cls.from_estimate(noisy, target, np.ones(12)).matrix,
        cls.from_estimate(noisy, target).matrix,
        atol=1e-12,
    )
    doubled = np.ones(12)
    doubled[5] = 2.0  # weight 2 == the pair given twice
    repeated = cls.from_estimate(np.r_[noisy, noisy[5:6]], np.r_[target, target[5:6]]).matrix
    np.testing.assert_allclose(
        cls.from_estimate(noisy, target, doubled).matrix, repeated, atol=1e-12
    )


def test_projective_agrees_with_scikit_image_in_the_opposite_direction(rng):
    transform = pytest.importorskip("skimage.transform")
    target = _points(rng, 40)
    exact = gw.Projective(HOMOGRAPHY).apply(target)
    fit = gw.Projective.from_estimate(exact, target)
    # scikit-image estimates the forward map, source -> target: ours is its inverse
    forward = transform.ProjectiveTransform.from_estimate(exact, target).params
    inverse = fit.inverse().matrix
    np.testing.assert_allclose(forward / forward[2, 2], inverse / inverse[2, 2], atol=1e-10)
    assert not np.allclose(forward / forward[2, 2], fit.matrix, atol=1e-3)
    # on noisy points both solve an algebraic least squares; scikit-image normalizes to
    # an RMS distance of sqrt(2), Hartley (and we) to a mean distance of sqrt(2)
    noisy = exact + rng.normal(0, 0.01, (40, 2))
    same = transform.ProjectiveTransform.from_estimate(target, noisy).params
    ours = gw.Projective.from_estimate(noisy, target).matrix
    np.testing.assert_allclose(same / same[2, 2], ours, atol=1e-4)


def test_affine_agrees_with_scikit_image_and_least_squares(rng):
    transform = pytest.importorskip("skimage.transform")
    target = _points(rng, 40)
    exact = gw.Affine(AFFINE).apply(target)
    forward = transform.AffineTransform.from_estimate(exact, target).params
    inverse = gw.Affine.from_estimate(exact, target).inverse().matrix
    np.testing.assert_allclose(forward[:2], inverse, atol=1e-10)
    noisy = exact + rng.normal(0, 0.01, (40, 2))
    design = np.c_[target, np.ones(40)]
    solution, *_ = np.linalg.lstsq(design, noisy, rcond=None)
    np.testing.assert_allclose(
        gw.Affine.from_estimate(noisy, target).matrix, solution.T, atol=1e-12
    )


def test_projective_agrees_with_opencv(rng):
    cv2 = pytest.importorskip("cv2")
    target = 100 * _points(rng, 30) + 200
    truth = np.diag([200.0, 200.0, 1.0]) @ HOMOGRAPHY @ np.diag([1 / 200, 1 / 200, 1.0])
    source = gw.Projective(truth).apply(target)
    theirs, _ = cv2.findHomography(target, source, 0)  # same direction: target -> source
    ours = gw.Projective.from_estimate(source, target).matrix
    np.testing.assert_allclose(ours, truth, rtol=1e-10)
    np.testing.assert_allclose(ours, theirs / theirs[2, 2], rtol=1e-5, atol=1e-8)


def test_float32_pixel_points_are_solved_accurately(rng):
    scale = np.diag([300.0, 300.0, 1.0])
    truth = scale @ HOMOGRAPHY @ np.linalg.inv(scale)
    target = (300 * _points(rng, 50)).astype(np.float32) + 400
    source = gw.Projective(truth).apply(target.astype(np.float64)).astype(np.float32)
    fit = gw.Projective.from_estimate(source, target)
    assert fit.dtype == np.float32
    exact = gw.Projective.from_estimate(source.astype(np.float64), target.astype(np.float64))
    np.testing.assert_allclose(fit.matrix, exact.matrix.astype(np.float32), rtol=1e-6, atol=1e-7)
    assert gw.estimate.residuals(exact, source, target).max() < 1e-3  # float32 rounding


SQUARE = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
DEGENERATE = {
    "affine, 2 points": ("affine", SQUARE[:2], SQUARE[:2], "at least 3 points; got 2"),
    "projective, 3 points": ("projective", SQUARE[:3], SQUARE[:3], "at least 4 points; got 3"),
    "tps, 2 points": ("tps", SQUARE[:2], SQUARE[:2], "at least 3 points; got 2"),
    "mismatched": ("affine", SQUARE, SQUARE[:3], "source_points has 4 points but target"),
    "duplicate": ("affine", SQUARE[:3], [[0, 0], [1, 0], [1, 0]], "[1] and target_points[2] coin"),
    "collinear": ("affine", SQUARE[:3], [[0, 0], [1, 1], [3, 3]], "all target_points lie on one"),
    "source collinear": ("projective", [[0, 0], [1, 1], [2, 2], [3, 3]], SQUARE, "all source_"),
    "3 of 4": ("projective", SQUARE, [[0, 0], [1, 0], [2, 0], [0, 1]], "3 of the 4 target_points"),
    "4 of 5 on a line": (
        "projective",
        [[0, 0], [1, 0], [2, 0], [3, 0], [0, 1]],
        [[0, 0], [1, 0], [2, 0], [3, 0], [0, 1]],
        "do not determine a homography",
    ),
    "nan": ("affine", [[0, 0], [1, 0], [np.nan, 1]], SQUARE[:3], "source_points[2] is not finite"),
    "inf": ("projective", SQUARE, [[0, 0], [1, 0], [0, 1], [np.inf, 1]], "target_points[3] is no"),
    "tps duplicate": ("tps", SQUARE[:3], [[0, 0], [1, 0], [1, 0]], "coincide"),
}


@pytest.mark.parametrize("case", DEGENERATE.values(), ids=DEGENERATE.keys())
def test_degenerate_points_fail_visibly(backend, case):
    family, source, target, reason = case
    cls = {"affine": gw.Affine, "projective": gw.Projective, "tps": gw.ThinPlateSpline}[family]
    fit = cls.from_estimate(backend.asarray(source), backend.asarray(target))
    assert isinstance(fit, gw.FailedEstimation)
    assert not fit
    assert reason in fit.message
    with pytest.raises(gw.GeowarpValueError, match="estimation failed") as error:
        fit.apply(np.zeros((1, 2)))
    assert fit.message in str(error.value)
    with pytest.raises(gw.GeowarpValueError):
        _ = fit.matrix


def test_zero_weights_leave_too_few_points():
    fit = gw.Affine.from_estimate(SQUARE, SQUARE, [1.0, 1.0, 0.0, 0.0])
    assert not fit
    assert "only 2 points have a positive weight" in fit.message


def test_a_degenerate_batch_item_is_named(rng):
    target = _points(rng, 2, 5)
    target[1, :, 1] = target[1, :, 0]  # item 1 on the diagonal
    fit = gw.Affine.from_estimate(target, target)
    assert "(batch item (1,))" in fit.message


@pytest.mark.parametrize(
    ("arguments", "error", "name"),
    [
        ((np.zeros((4, 3)), np.zeros((4, 2))), gw.GeowarpValueError, "source_points"),
        ((np.zeros((4, 2)), np.zeros(4)), gw.GeowarpValueError, "target_points"),
        ((np.zeros((4, 2)), np.array(SQUARE), np.ones(3)), gw.GeowarpValueError, "weights"),
        ((np.zeros((4, 2)), np.array(SQUARE), -np.ones(4)), gw.GeowarpValueError, "weights"),
        ((np.zeros((4, 2), dtype=bool), np.array(SQUARE)), gw.GeowarpTypeError, "source_points"),
        ((object(), np.array(SQUARE)), gw.GeowarpTypeError, "object"),
    ],
)
def test_bad_arguments_raise(arguments, error, name):
    with pytest.raises(error, match=name):
        gw.Projective.from_estimate(*arguments)


def test_sequences_of_integers_are_points():
    fit = gw.Affine.from_estimate([[0, 0], [2, 0], [0, 2]], [[0, 0], [1, 0], [0, 1]])
    np.testing.assert_allclose(fit.matrix, [[2, 0, 0], [0, 2, 0]])


def _fitted_sum(cls: Any, xp: Any, source: Any, target: Any, weights: np.ndarray) -> Any:
    matrix = cls.from_estimate(source, target).matrix
    return xp.sum(matrix * xp.asarray(weights, dtype=matrix.dtype))


@pytest.mark.parametrize("family", ["affine", "projective"])
def test_gradients_match_finite_differences(autodiff_backend, rng, family):
    cls, matrix = FAMILIES[family]
    target = _points(rng, 8)
    source = cls(matrix).apply(target) + rng.normal(0, 0.02, (8, 2))
    weights = rng.normal(size=matrix.shape)
    step = 1e-6
    expected = np.zeros_like(source)
    for index in np.ndindex(source.shape):
        bumped = [source.copy(), source.copy()]
        bumped[0][index] += step
        bumped[1][index] -= step
        ends = [float(_fitted_sum(cls, np, b, target, weights)) for b in bumped]
        expected[index] = (ends[0] - ends[1]) / (2 * step)
    found = _gradient(autodiff_backend, cls, source, target, weights)
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-7)


def _gradient(backend: Any, cls: Any, source: Any, target: Any, weights: Any) -> np.ndarray:
    xp, name = backend.xp, backend.name
    if name == "torch":
        import torch

        leaf = torch.tensor(source, requires_grad=True)
        (grad,) = torch.autograd.grad(_fitted_sum(cls, xp, leaf, target, weights), leaf)
        return grad.numpy()
    if name == "jax":
        import jax

        return np.asarray(jax.grad(lambda s: _fitted_sum(cls, xp, s, target, weights))(source))
    import tensorflow as tf

    leaf = tf.Variable(source)
    with tf.GradientTape() as tape:
        total = _fitted_sum(cls, xp, leaf, tf.constant(target), weights)
    return tape.gradient(total, leaf).numpy()


def test_under_jax_jit_the_fit_runs_without_checks(rng):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    target = _points(rng, 10)
    source = gw.Projective(HOMOGRAPHY).apply(target)
    fitted = jax.jit(lambda s, t: gw.Projective.from_estimate(s, t).matrix)(source, target)
    np.testing.assert_allclose(np.asarray(fitted), HOMOGRAPHY, atol=1e-9)


@pytest.mark.parametrize("family", ["affine", "projective"])
def test_ransac_finds_the_inliers(backend, rng, family):
    cls, matrix = FAMILIES[family]
    target = _points(rng, 50)
    source = cls(matrix).apply(target)
    outliers = rng.permutation(50)[:15]  # 30 % gross outliers
    source[outliers] += rng.uniform(0.5, 2.0, (15, 2)) * rng.choice([-1, 1], (15, 2))
    fit, inliers = gw.estimate.ransac(
        family, backend.asarray(source), backend.asarray(target), threshold=1e-3, seed=3
    )
    expected = np.ones(50, dtype=bool)
    expected[outliers] = False
    np.testing.assert_array_equal(backend.to_numpy(inliers), expected)
    np.testing.assert_allclose(backend.to_numpy(fit.matrix), matrix, atol=1e-8)
    again, _ = gw.estimate.ransac(family, source, target, threshold=1e-3, seed=3)
    np.testing.assert_allclose(again.matrix, backend.to_numpy(fit.matrix), atol=1e-13)


def test_ransac_is_batched_and_fails_visibly(rng):
    target = _points(rng, 2, 30)
    source = gw.Affine(AFFINE).apply(target)
    source[1, :4] += 1.0
    fit, inliers = gw.estimate.ransac(gw.Affine, source, target, threshold=1e-4)
    assert fit.batch_shape == (2,)
    assert inliers.sum(axis=-1).tolist() == [30, 26]
    failed, _ = gw.estimate.ransac(gw.Affine, source, target, threshold=1e-4, min_inliers=28)
    assert not failed
    assert "fewer than the 28 asked" in failed.message
    with pytest.raises(gw.GeowarpValueError, match="Affine or Projective"):
        gw.estimate.ransac("tps", source, target, threshold=1.0)


def test_failed_estimation_is_falsy_and_refuses_everything():
    failed = gw.FailedEstimation("no points")
    assert not failed
    assert repr(failed) == "FailedEstimation('no points')"
    with pytest.raises(gw.GeowarpValueError, match="no points"):
        failed.inverse()
    with pytest.raises(gw.GeowarpValueError, match="no points"):
        _ = gw.Affine.identity() @ failed
    assert not hasattr(failed, "_private")


def test_warping_by_a_failed_estimation_says_why():
    failed = gw.Affine.from_estimate(np.zeros((2, 2)), np.zeros((2, 2)))
    assert not failed
    with pytest.raises(gw.GeowarpValueError, match=r"failed estimation: .*"):
        gw.warp(np.zeros((1, 1, 4, 4)), failed)
