"""`geowarp.testing`: every built-in family passes the contract on every backend, and so
does a family written outside the package (radial lens distortion)."""

from __future__ import annotations

import numpy as np
import pytest

import geowarp as gw
from geowarp._namespace import array_namespace
from geowarp.autodiff import Op, call
from geowarp.testing import check_transform


# --- a new family, as a user writes it (no slots, public names only) -----------------
class RadialLens(gw.Transform, family="lens"):
    """``p -> c + (p - c)(1 + k1 r^2 + k2 r^4)``; the inverse by Newton steps on the scale."""

    def __init__(self, k, centre, inverted=False):
        self.k, self.centre, self.inverted = k, centre, inverted  # (..., 2), (..., 2), bool

    @property
    def batch_shape(self):
        return tuple(self.k.shape[:-1])

    @classmethod
    def param_count(cls):
        return 4

    @classmethod
    def from_params(cls, params):  # zeros: no distortion about the centre
        return cls(params[..., :2], params[..., 2:])

    def apply(self, points):
        points, xp = self.validate_points(points), self.xp
        k1, k2 = self.k[..., None, 0:1], self.k[..., None, 1:2]
        centre = self.centre[..., None, :]
        offset = points - centre
        r2 = xp.sum(offset * offset, axis=-1, keepdims=True)
        if not self.inverted:
            return centre + offset * (1 + k1 * r2 + k2 * r2 * r2)
        scale = xp.ones_like(r2)  # solve s (1 + k1 s^2 r^2 + k2 s^4 r^4) = 1 for s
        for _ in range(8):
            s2 = scale * scale * r2
            residual = scale * (1 + k1 * s2 + k2 * s2 * s2) - 1
            scale = scale - residual / (1 + 3 * k1 * s2 + 5 * k2 * s2 * s2)
        return centre + offset * scale

    def inverse(self):
        return RadialLens(self.k, self.centre, not self.inverted)


# --- factories: each family near the identity -------------------------------------------
def _control_grid() -> np.ndarray:
    xs, ys = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def affine(asarray, batch, rng):
    return gw.Affine(asarray(np.eye(2, 3) + 0.1 * rng.normal(size=(*batch, 2, 3))))


def affine3x3(asarray, batch, rng):
    matrix = np.broadcast_to(np.eye(3), (*batch, 3, 3)).copy()
    matrix[..., :2, :] += 0.1 * rng.normal(size=(*batch, 2, 3))
    return gw.Affine(asarray(matrix))


def projective(asarray, batch, rng):  # any scale, even negative
    return gw.Projective(asarray(-2.0 * (np.eye(3) + 0.05 * rng.normal(size=(*batch, 3, 3)))))


def tps(asarray, batch, rng):
    source = _control_grid() + 0.05 * rng.normal(size=(*batch, 9, 2))
    return gw.ThinPlateSpline(asarray(source), asarray(_control_grid()), regularization=0.01)


def composed(asarray, batch, rng):
    return gw.Composed(affine(asarray, batch, rng), tps(asarray, batch, rng))


def lens(asarray, batch, rng):
    k = 0.1 * rng.normal(size=(*batch, 2))
    return RadialLens(asarray(k), asarray(0.1 * rng.normal(size=(*batch, 2))))


FACTORIES = {
    "affine": affine,
    "affine3x3": affine3x3,
    "projective": projective,
    "tps": tps,
    "composed": composed,
    "lens": lens,
}


@pytest.mark.parametrize("family", list(FACTORIES))
def test_family_keeps_the_contract(backend, family):
    invertible = family not in ("tps", "composed")
    report = check_transform(FACTORIES[family], backends=[backend.name], invertible=invertible)
    expected = 8 if backend.name in ("torch", "jax", "tensorflow") else 7
    assert len(report[backend.name]) == expected, report


# --- the checks can fail ------------------------------------------------------------------
def _affine_forward(matrix, points):
    xp = array_namespace(matrix, points)
    linear = points @ xp.matrix_transpose(matrix[..., :2])
    return linear + matrix[..., None, :, 2], (matrix, points)


def _bad_vjp(residuals, cotangent, needs=(True, True)):
    matrix, _points = residuals
    return (None, cotangent @ matrix[..., :2])  # forgets the matrix's gradient entirely


_SHIFT = Op("bad_shift", _affine_forward, _bad_vjp)


class BadGradient(gw.Transform):
    def __init__(self, matrix):
        self.matrix = matrix

    @property
    def batch_shape(self):
        return tuple(self.matrix.shape[:-2])

    def apply(self, points):
        return call(_SHIFT, self.matrix, self.validate_points(points))


def test_a_wrong_vjp_fails_the_gradient_check():
    pytest.importorskip("torch")

    def factory(asarray, batch, rng):
        return BadGradient(asarray(np.eye(2, 3) + 0.1 * rng.normal(size=(*batch, 2, 3))))

    with pytest.raises(AssertionError, match=r"\[torch\] gradients"):
        check_transform(factory, backends=["numpy", "torch"])


def test_a_family_claimed_invertible_must_invert():
    with pytest.raises(AssertionError, match=r"\[numpy\] inverse"):
        check_transform(tps, backends=["numpy"], invertible=True)


def test_a_wrong_sampling_grid_override_is_caught():
    class Shifted(gw.Affine):
        def _grid(self, height, width, align_corners):
            return super()._grid(height, width, align_corners) + 1e-3

    def factory(asarray, batch, rng):
        return Shifted(affine(asarray, batch, rng).matrix)

    with pytest.raises(AssertionError, match="sampling_grid"):
        check_transform(factory, backends=["numpy"])


# --- a new family joins the layers and the backends by name ----------------------------
def test_a_new_family_joins_the_spatial_transformer_by_name():
    torch = pytest.importorskip("torch")
    from geowarp.torch import SpatialTransformer

    stn = SpatialTransformer(torch.nn.Flatten(), "lens")
    image = torch.rand(2, 1, 6, 6)
    out, transform = stn(image, return_transform=True)
    assert isinstance(transform, RadialLens)
    assert stn.head.out_features == 4
    torch.testing.assert_close(out, image, rtol=0, atol=1e-6)  # identity at initialisation
    assert gw.transforms.get_family("lens") is RadialLens  # the class statement registered it


def test_a_family_name_is_not_taken_silently():
    with pytest.raises(gw.GeowarpValueError, match=r"'lens' is taken by .*RadialLens"):

        class Other(RadialLens, family="lens"):
            pass

    assert gw.transforms.get_family("lens") is RadialLens

    def define() -> type:
        class Again(RadialLens, family="lens_again"):
            pass

        return Again

    first, second = define(), define()  # the same class defined twice: the latest wins
    assert gw.transforms.get_family("lens_again") is second is not first


def test_a_family_defined_after_jax_arrays_is_a_pytree():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    gw.warp(jnp.ones((1, 1, 2, 2)), gw.Affine(jnp.eye(2, 3)))  # JAX is in use from here

    class Late(RadialLens):
        pass

    late = Late(jnp.array([0.1, 0.0]), jnp.zeros(2))
    grad = jax.grad(lambda t: jnp.sum(t.apply(jnp.ones((1, 2)))))(late)
    assert type(grad) is Late
    assert grad.k.shape == (2,)
