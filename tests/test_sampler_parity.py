"""`gw.sample` against torch's grid_sample: every mode x padding x align_corners."""

from __future__ import annotations

import numpy as np
import pytest

import geowarp as gw
from _helpers import COMBINATIONS, core_op, random_grid, torch_reference, vjp

IMAGE_SHAPE = (2, 3, 5, 7)  # non-square
GRID_SHAPE = (2, 4, 6, 2)  # output size differs from the input's
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


@pytest.fixture
def case(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "image": rng.normal(size=IMAGE_SHAPE),
        "grid": random_grid(rng, GRID_SHAPE),
        "cotangent": rng.normal(size=(*GRID_SHAPE[:3], IMAGE_SHAPE[1])).transpose(0, 3, 1, 2),
        "fill": rng.normal(size=IMAGE_SHAPE[1]),
    }


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_match_grid_sample(backend, case, mode, padding, align_corners, dtype):
    image = case["image"].astype(dtype)
    grid = case["grid"].astype(dtype)
    fill = case["fill"].astype(dtype)
    expected, _, _ = torch_reference(
        image,
        grid,
        case["cotangent"].astype(dtype),
        mode=mode,
        padding=padding,
        align_corners=align_corners,
        fill=fill,
    )
    out = gw.sample(
        backend.asarray(image, dtype),
        backend.asarray(grid, dtype),
        mode=mode,
        padding=padding,
        align_corners=align_corners,
        fill_value=backend.asarray(fill, dtype) if padding == "constant" else None,
    )
    assert out.dtype == backend.asarray(image, dtype).dtype
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=0, atol=TOLERANCE[dtype] * 10)


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
def test_core_vjp_matches_grid_sample(backend, case, mode, padding, align_corners):
    """The explicit VJP (no framework autodiff) against torch's gradients, float64."""
    expected_out, expected_image, expected_grid = torch_reference(
        case["image"],
        case["grid"],
        case["cotangent"],
        mode=mode,
        padding=padding,
        align_corners=align_corners,
        fill=case["fill"],
    )
    fill = case["fill"] if padding == "constant" else np.zeros(IMAGE_SHAPE[1])
    op = core_op(mode)
    out, residuals = op.forward(
        backend.asarray(case["image"]),
        backend.asarray(case["grid"]),
        backend.asarray(fill),
        padding=padding,
        align_corners=align_corners,
    )
    d_image, d_grid, _ = op.vjp(
        residuals, backend.asarray(case["cotangent"]), padding=padding, align_corners=align_corners
    )
    np.testing.assert_allclose(backend.to_numpy(out), expected_out, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(d_image), expected_image, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(d_grid), expected_grid, atol=1e-10)


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
@pytest.mark.parametrize("native", [True, False])
def test_autodiff_gradients_match_grid_sample(
    autodiff_backend, case, mode, padding, align_corners, native
):
    """Gradients through each framework's autodiff (native kernel and portable path)."""
    backend = autodiff_backend
    _, expected_image, expected_grid = torch_reference(
        case["image"],
        case["grid"],
        case["cotangent"],
        mode=mode,
        padding=padding,
        align_corners=align_corners,
        fill=case["fill"],
    )

    def run(image, grid):
        return gw.sample(
            image,
            grid,
            mode=mode,
            padding=padding,
            align_corners=align_corners,
            fill_value=backend.asarray(case["fill"]) if padding == "constant" else None,
            native=native,
        )

    _, (d_image, d_grid) = vjp(
        backend,
        run,
        (backend.asarray(case["image"]), backend.asarray(case["grid"])),
        backend.asarray(case["cotangent"]),
    )
    np.testing.assert_allclose(backend.to_numpy(d_image), expected_image, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(d_grid), expected_grid, atol=1e-10)


KINK_COORDINATES = [-1.0, -1.0 + 1e-6, -0.8, -0.5, 0.0, 1.0 / 7, 0.5, 1.0 - 1e-6, 1.0, 1.25, 3.0]


@pytest.mark.parametrize(("mode", "padding", "align_corners"), COMBINATIONS)
def test_kinks_match_grid_sample(backend, mode, padding, align_corners):
    """Pixel centres, pixel edges, the border and beyond: values and gradients as torch."""
    rng = np.random.default_rng(3)
    image = rng.normal(size=(1, 2, 4, 7))
    xs, ys = np.meshgrid(KINK_COORDINATES, KINK_COORDINATES[::-1])
    grid = np.stack([xs, ys], axis=-1)[None]
    cotangent = rng.normal(size=(1, 2, *grid.shape[1:3]))
    fill = np.array([0.5, -2.0])
    expected = torch_reference(
        image,
        grid,
        cotangent,
        mode=mode,
        padding=padding,
        align_corners=align_corners,
        fill=fill,
        ring=False,
    )
    op = core_op(mode)
    out, residuals = op.forward(
        backend.asarray(image),
        backend.asarray(grid),
        backend.asarray(fill if padding == "constant" else fill * 0),
        padding=padding,
        align_corners=align_corners,
    )
    d_image, d_grid, _ = op.vjp(
        residuals, backend.asarray(cotangent), padding=padding, align_corners=align_corners
    )
    for actual, wanted in zip((out, d_image, d_grid), expected, strict=True):
        np.testing.assert_allclose(backend.to_numpy(actual), wanted, atol=1e-12)


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_grid_matches_torch(backend, rng, align_corners):
    import torch
    import torch.nn.functional as F

    theta = rng.normal(size=(3, 2, 3))
    expected = F.affine_grid(torch.tensor(theta), [3, 1, 5, 7], align_corners=align_corners)
    for dtype in ("float32", "float64"):
        grid = gw.Affine(backend.asarray(theta, dtype)).sampling_grid(
            (5, 7), align_corners=align_corners
        )
        np.testing.assert_allclose(backend.to_numpy(grid), expected.numpy(), atol=1e-6)
