"""JAX: gradients through jax.custom_vjp under grad and jit."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

import geowarp as gw  # noqa: E402


def _warp_loss(image, theta):
    return jnp.sum(gw.warp(image, gw.Affine(theta), (5, 6)) ** 2)


def test_grad_matches_torch_under_jit():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    image = rng.normal(size=(2, 3, 7, 8))
    theta = np.eye(2, 3) + 0.2 * rng.normal(size=(2, 2, 3))
    d_image, d_theta = jax.jit(jax.grad(_warp_loss, argnums=(0, 1)))(image, theta)
    image_t = torch.tensor(image, requires_grad=True)
    theta_t = torch.tensor(theta, requires_grad=True)
    grid = torch.nn.functional.affine_grid(theta_t, [2, 3, 5, 6], align_corners=False)
    out = torch.nn.functional.grid_sample(image_t, grid, align_corners=False)
    expected = torch.autograd.grad(out.square().sum(), (image_t, theta_t))
    np.testing.assert_allclose(np.asarray(d_image), expected[0].numpy(), atol=1e-10)
    np.testing.assert_allclose(np.asarray(d_theta), expected[1].numpy(), atol=1e-10)


def test_tps_source_gradient_under_jit():
    xs, ys = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
    target = jnp.asarray(np.stack([xs.ravel(), ys.ravel()], axis=-1))
    image = jnp.asarray(np.random.default_rng(2).normal(size=(1, 1, 6, 6)))

    def loss(source):
        spline = gw.ThinPlateSpline.from_landmarks(source, target)
        return jnp.sum(gw.warp(image, spline) ** 2)

    source = target + 0.05
    gradient = jax.jit(jax.grad(loss))(source)
    step = 1e-6
    direction = jnp.asarray(np.random.default_rng(3).normal(size=source.shape))
    numeric = (loss(source + step * direction) - loss(source - step * direction)) / (2 * step)
    np.testing.assert_allclose(float(jnp.sum(gradient * direction)), float(numeric), rtol=1e-6)


def test_default_32_bit_jax_gets_no_dtype_warning():
    """Without x64, JAX warns on every int64 request; geowarp asks for JAX's own index dtype."""
    import subprocess
    import sys

    script = (
        "import warnings; warnings.simplefilter('error')\n"
        "import jax, jax.numpy as jnp, geowarp as gw\n"
        "image = jnp.ones((2, 3, 5, 4)); theta = jnp.eye(2, 3)[None] * jnp.ones((2, 1, 1))\n"
        "loss = lambda i, t: jnp.sum(gw.warp(i, gw.Affine(t), native=False) ** 2)\n"
        "d_image, d_theta = jax.jit(jax.grad(loss, argnums=(0, 1)))(image, theta)\n"
        "assert d_image.dtype == jnp.float32 and d_theta.shape == (2, 2, 3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_transforms_are_pytrees():
    """Transforms pass through jit, grad and vmap; gradients come back as transforms."""
    rng = np.random.default_rng(3)
    image = jnp.asarray(rng.normal(size=(1, 2, 6, 5)))
    control = np.stack(np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3)), -1)
    control = jnp.asarray(control.reshape(-1, 2))
    affine = gw.Affine(jnp.asarray(np.eye(2, 3) + 0.1 * rng.normal(size=(2, 3))))
    tps = gw.ThinPlateSpline(control + 0.05, control, regularization=0.01)
    for transform in (affine, affine @ tps):
        loss = lambda t: jnp.sum(gw.warp(image, t, (4, 3)) ** 2)  # noqa: E731
        np.testing.assert_allclose(jax.jit(loss)(transform), loss(transform), rtol=1e-12)
        grads = jax.grad(loss)(transform)
        assert type(grads) is type(transform)
    d_matrix = jax.grad(lambda m: jnp.sum(gw.warp(image, gw.Affine(m), (4, 3)) ** 2))(affine.matrix)
    np.testing.assert_allclose(jax.grad(loss)(affine).matrix, d_matrix, rtol=1e-12)
    stacked = gw.Affine(jnp.stack([affine.matrix, 2 * affine.matrix]))
    batched = jax.vmap(lambda t: gw.warp(image, t, (4, 3)))(stacked)
    assert batched.shape == (2, 1, 2, 4, 3)
    np.testing.assert_allclose(batched[1], gw.warp(image, gw.Affine(2 * affine.matrix), (4, 3)))
