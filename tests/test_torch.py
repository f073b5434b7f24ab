"""PyTorch: gradcheck, the explicit VJPs against autograd, native against portable."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import geowarp as gw  # noqa: E402
from geowarp.autodiff import Op  # noqa: E402
from geowarp.transforms._matrix_ops import AFFINE_APPLY, PROJECTIVE_APPLY  # noqa: E402
from geowarp.transforms._tps_ops import TPS_APPLY, TPS_GRID  # noqa: E402


def _plain(op: Op):
    """The op's forward alone, so torch differentiates the maths itself."""
    return lambda *arrays, **options: op.forward(*arrays, **options)[0]


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(7)


def _tensor(shape, generator, scale=1.0):
    return (scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).requires_grad_()


@pytest.mark.parametrize(
    ("op", "make_inputs", "options"),
    [
        (AFFINE_APPLY, lambda g: (_tensor((3, 2, 3), g), _tensor((5, 2), g)), {}),
        (
            PROJECTIVE_APPLY,
            lambda g: (
                (torch.eye(3) + _tensor((3, 3), g, 0.1)).detach().requires_grad_(),
                _tensor((4, 2), g),
            ),
            {},
        ),
        (
            TPS_APPLY,
            lambda g: (_tensor((6, 2), g).detach(), _tensor((2, 6, 2), g), _tensor((5, 2), g)),
            {"regularization": 0.01},
        ),
        (TPS_GRID, lambda g: (_tensor((6, 7), g).detach(), _tensor((2, 6, 2), g)), {}),
    ],
    ids=["affine", "projective", "tps", "tps_grid"],
)
def test_explicit_vjp_equals_autograd_of_forward(op, make_inputs, options, generator):
    inputs = make_inputs(generator)
    cotangent = torch.randn(
        op.forward(*inputs, **options)[0].shape, generator=generator, dtype=torch.float64
    )
    wanted = [i for i in inputs if i.requires_grad]
    explicit = torch.autograd.grad(gw.autodiff.call(op, *inputs, **options), wanted, cotangent)
    automatic = torch.autograd.grad(_plain(op)(*inputs, **options), wanted, cotangent)
    for got, expected in zip(explicit, automatic, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection", "constant"])
@pytest.mark.parametrize("native", [True, False])
def test_gradcheck_warp(mode, padding, native, generator):
    image = _tensor((2, 2, 5, 6), generator)
    theta = torch.tensor(
        [[0.9, 0.2, 0.1], [-0.1, 1.1, 0.05]], dtype=torch.float64
    ) + 0.05 * torch.randn(2, 2, 3, generator=generator, dtype=torch.float64)
    theta.requires_grad_()
    # a fill value only with constant padding, where it is differentiated too
    fill = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    fills = (fill,) if padding == "constant" else ()

    def run(image, theta, *fill):
        return gw.warp(
            image,
            gw.Affine(theta),
            (4, 7),
            mode=mode,
            padding=padding,
            fill_value=fill[0] if fill else None,
            native=native,
        )

    if mode == "nearest":
        theta = theta.detach()
        assert torch.autograd.gradcheck(lambda i, *f: run(i, theta, *f), (image, *fills))
    else:
        assert torch.autograd.gradcheck(run, (image, theta, *fills))


@pytest.mark.parametrize("family", ["affine", "projective", "tps"])
def test_native_and_portable_warps_agree(family, generator):
    image = _tensor((3, 2, 9, 8), generator)
    if family == "affine":
        transform = gw.Affine.from_params(_tensor((3, 6), generator, 0.1))
    elif family == "projective":
        transform = gw.Projective.from_params(_tensor((3, 8), generator, 0.05))
    else:
        xs, ys = torch.meshgrid(
            torch.linspace(-1, 1, 4, dtype=torch.float64),
            torch.linspace(-1, 1, 4, dtype=torch.float64),
            indexing="xy",
        )
        target = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)
        source = (
            target + 0.05 * torch.randn(3, 16, 2, generator=generator, dtype=torch.float64)
        ).requires_grad_()
        transform = gw.ThinPlateSpline.from_landmarks(source, target)
    leaves = [image, *(t for t in _leaves(transform))]
    results = []
    for native in (True, False):
        out = gw.warp(image, transform, (7, 10), native=native)
        results.append((out, torch.autograd.grad(out.square().sum(), leaves)))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=1e-12)
    for got, expected in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-10)


def _leaves(transform):
    if isinstance(transform, gw.ThinPlateSpline):
        return [transform.source_points]
    return [transform.matrix]


def test_warp_backpropagates_to_image_and_theta_float32():
    image = torch.rand(2, 1, 8, 8, requires_grad=True)
    theta = torch.tensor([[[1.0, 0.1, 0.0], [0.0, 1.0, 0.2]]] * 2, requires_grad=True)
    out = gw.warp(image, gw.Affine(theta))
    out.sum().backward()
    assert out.dtype == torch.float32
    assert image.grad is not None
    assert theta.grad is not None
    assert float(theta.grad.abs().sum()) > 0


def test_torch_func_grad_through_portable_path():
    """The autograd.Function with setup_context works under torch.func transforms."""
    image = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    grid = torch.rand(1, 3, 3, 2, dtype=torch.float64) * 1.6 - 0.8

    def loss(g, native):
        return gw.sample(image, g, native=native).sum()

    portable = torch.func.grad(lambda g: loss(g, False))(grid)
    native = torch.func.grad(lambda g: loss(g, True))(grid)
    torch.testing.assert_close(portable, native, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding", ["zeros", "border", "reflection", "constant"])
def test_grids_within_the_limit_skip_it_with_the_same_results(padding, generator, monkeypatch):
    """A finite grid inside +-2^20 skips the limit op on the CPU: same values and gradients."""
    from geowarp.torch import _native

    image = _tensor((2, 3, 5, 6), generator)
    theta = (torch.eye(2, 3, dtype=torch.float64) + _tensor((2, 2, 3), generator, 0.3)).detach()
    theta.requires_grad_()
    fill = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)

    def run() -> list[torch.Tensor]:
        fill_value = fill if padding == "constant" else None
        out = gw.warp(image, gw.Affine(theta), (4, 7), padding=padding, fill_value=fill_value)
        return [out, *torch.autograd.grad((out * out).sum(), (image, theta))]

    assert _native._within_limit(gw.Affine(theta).sampling_grid((4, 7)))
    skipped = run()
    monkeypatch.setattr(_native, "_within_limit", lambda grid: False)
    limited = run()
    for got, expected in zip(skipped, limited, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    for bad in (float("nan"), 2.0**21, float("inf")):
        assert not _native._within_limit(torch.tensor([[[[0.0, bad]]]]))
