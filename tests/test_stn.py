"""SpatialTransformer, ICSTN and their helpers (geowarp.torch)."""

from __future__ import annotations

import io
import warnings

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import geowarp as gw  # noqa: E402
from geowarp.torch import (  # noqa: E402
    ICSTN,
    SpatialTransformer,
    compose_params,
    init_identity_,
    param_count,
    params_to_transform,
    tps_control_points,
    transform_to_params,
)

KINDS = ["affine", "projective", "tps"]
MATRIX_KINDS = ["affine", "projective"]
SIZE = 12  # images are SIZE x SIZE


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(20261126)


def _localization(channels: int = 1, features: int = 8) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * SIZE * SIZE, features), nn.Tanh())


def _stn(kind: str = "affine", **options) -> SpatialTransformer:
    return SpatialTransformer(
        _localization(options.pop("channels", 1)), kind, features=8, **options
    )


def _icstn(kind: str = "affine", scale: float = 0.0, **options) -> ICSTN:
    """An IC-STN over `_localization`; ``scale`` > 0 moves its head off the identity."""
    icstn = ICSTN(_localization(), kind, features=8, **options)
    with torch.no_grad():
        icstn.head.weight.normal_(0.0, scale)
    return icstn


def _untrain(stn: SpatialTransformer, scale: float = 0.05) -> SpatialTransformer:
    """Move the head off the identity, as training would."""
    with torch.no_grad():
        stn.head.weight.normal_(0.0, scale)
        stn.head.bias.normal_(0.0, scale)
    return stn


def _images(batch: int = 3, channels: int = 1) -> torch.Tensor:
    return torch.rand(batch, channels, SIZE, SIZE)


# --- shapes and the identity at initialisation ---------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("out_shape", [None, (6, 10)])
def test_output_shapes(kind, out_shape):
    stn = _stn(kind, channels=2, out_shape=out_shape)
    out, transform = stn(_images(3, channels=2), return_transform=True)
    assert out.shape == (3, 2, *(out_shape or (SIZE, SIZE)))
    assert transform.batch_shape == (3,)
    assert stn.predict_params(_images(3, channels=2)).shape == (3, param_count(kind))


@pytest.mark.parametrize("module", [SpatialTransformer, ICSTN])
def test_head_width_is_found_on_the_first_call_and_starts_at_the_identity(module):
    kind = "projective"
    transformer = module(_localization(features=5), kind)
    image = _images()
    torch.testing.assert_close(transformer(image), image, rtol=0, atol=1e-5)
    assert type(transformer.head) is nn.Linear
    assert (transformer.head.in_features, transformer.head.out_features) == (5, 8)
    assert torch.count_nonzero(transformer.head.weight) == 0
    assert torch.count_nonzero(transformer.head.bias) == 0


def test_tps_params_default_to_the_four_by_four_control_grid():
    params = 0.1 * torch.randn(2, 32)
    expected = params_to_transform(params, "tps", control_points=tps_control_points())
    points = 2 * torch.rand(6, 2) - 1
    torch.testing.assert_close(
        params_to_transform(params, "tps").apply(points), expected.apply(points)
    )


def test_tps_control_grid_sizes_the_head():
    assert _stn("tps").head.out_features == 32  # 16 control points by default
    assert tps_control_points().shape == (16, 2)
    stn = _stn("tps", control_grid=(3, 5))
    assert stn.head.out_features == 30
    assert stn.control_points is not None
    assert stn.control_points.shape == (15, 2)
    assert float(stn.control_points.abs().max()) == 1.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("align_corners", [False, True])
def test_untrained_stn_returns_its_input(kind, align_corners):
    stn = _stn(kind, align_corners=align_corners)
    image = _images()
    assert torch.count_nonzero(stn.head.weight) == 0
    assert torch.count_nonzero(stn.predict_params(image)) == 0
    torch.testing.assert_close(stn(image), image, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_untrained_icstn_returns_its_input(kind):
    icstn = _icstn(kind, steps=3)
    image = _images()
    torch.testing.assert_close(icstn(image), image, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "nearest", "padding": "border"},
        {"padding": "reflection", "align_corners": True},
        {"padding": "constant", "fill_value": 0.5, "out_shape": (5, 7)},
    ],
    ids=["nearest-border", "reflection-corners", "constant"],
)
def test_warp_settings_reach_the_sampler(settings):
    stn = _stn("affine", **settings)
    with torch.no_grad():
        stn.head.bias.copy_(torch.tensor([0.2, 0.1, 0.6, -0.1, 0.0, -0.3]))
    image = _images()
    out, transform = stn(image, return_transform=True)
    sampler = {name: value for name, value in settings.items() if name != "out_shape"}
    expected = gw.warp(image, transform, settings.get("out_shape"), **sampler)
    torch.testing.assert_close(out, expected)


# --- gradients -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_localization_head_and_classifier(kind):
    stn = _stn(kind)
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 3))
    model = nn.Sequential(stn, classifier)
    image, labels = _images(4), torch.tensor([0, 1, 2, 1])

    def gradients() -> dict[str, torch.Tensor]:
        model.zero_grad()
        nn.functional.cross_entropy(model(image), labels).backward()
        return {name: p.grad for name, p in model.named_parameters() if p.grad is not None}

    first = gradients()
    assert set(first) == {name for name, _ in model.named_parameters()}
    for name, grad in first.items():
        # the zero head passes a zero gradient on to the localisation network, as in the paper
        assert (torch.count_nonzero(grad) > 0) == (".localization." not in name), name
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    for name, grad in gradients().items():
        assert torch.count_nonzero(grad) > 0, name


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_icstn_gradients_flow_through_every_step(kind):
    icstn = _icstn(kind, scale=0.05, steps=3)
    updates: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: object, update: torch.Tensor) -> None:
        update.retain_grad()
        updates.append(update)

    icstn.head.register_forward_hook(keep)
    image = _images().requires_grad_()
    icstn(image).square().sum().backward()
    assert len(updates) == 3
    for step, update in enumerate(updates):
        assert update.grad is not None, step
        assert torch.count_nonzero(update.grad) > 0, step
    assert image.grad is not None
    for name, parameter in icstn.named_parameters():
        assert parameter.grad is not None, name
        assert torch.count_nonzero(parameter.grad) > 0, name


# --- IC-STN composition ----------------------------------------------------------------


class _Scripted(nn.Module):
    """A localisation network that returns given features in turn, whatever it sees."""

    def __init__(self, updates: list[torch.Tensor]) -> None:
        super().__init__()
        self.updates = updates
        self.seen: list[torch.Tensor] = []

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self.seen.append(image)
        return self.updates[len(self.seen) - 1]


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_icstn_warps_the_original_image_and_composes_updates(kind):
    count = param_count(kind)
    updates = [0.1 * torch.randn(2, count) for _ in range(3)]
    predictor = _Scripted(updates)
    icstn = ICSTN(predictor, kind, steps=3, out_shape=(7, 9), features=count)
    with torch.no_grad():  # a head that passes the features on as the updates
        icstn.head.weight.copy_(torch.eye(count))
    image = _images(2)
    out, transform = icstn(image, return_transform=True)

    expected = params_to_transform(torch.zeros(2, count), kind)
    for seen, update in zip(predictor.seen, updates, strict=True):
        # each step reads the ORIGINAL image through the current warp, then composes
        torch.testing.assert_close(seen, gw.warp(image, expected, (7, 9)))
        expected = params_to_transform(update, kind) @ expected
    points = 2 * torch.rand(5, 2) - 1
    torch.testing.assert_close(transform.apply(points), expected.apply(points))
    torch.testing.assert_close(out, gw.warp(image, expected, (7, 9)))


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_icstn_one_step_is_an_stn_composed_from_the_identity(kind):
    stn = _untrain(_stn(kind), 0.1)
    icstn = ICSTN(stn.localization, kind, steps=1, features=8)
    icstn.head = stn.head
    image = _images()
    out_stn, transform_stn = stn(image, return_transform=True)
    out_icstn, transform_icstn = icstn(image, return_transform=True)
    torch.testing.assert_close(out_icstn, out_stn, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        transform_icstn.matrix3x3(), transform_stn.matrix3x3(), rtol=0, atol=1e-5
    )
    assert len(list(icstn.parameters())) == len(list(stn.parameters()))  # the same modules


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_compose_params_is_the_update_after_the_current_warp(kind):
    update, params = (
        0.2 * torch.randn(4, param_count(kind)),
        0.2 * torch.randn(4, param_count(kind)),
    )
    composed = params_to_transform(compose_params(update, params, kind), kind)
    points = 2 * torch.rand(4, 6, 2) - 1
    sequential = params_to_transform(update, kind).apply(
        params_to_transform(params, kind).apply(points)
    )
    torch.testing.assert_close(composed.apply(points), sequential, rtol=1e-4, atol=1e-5)


def test_compose_params_renormalises_homographies():
    update = torch.tensor([0.1, 0.0, 0.2, 0.0, -0.1, 0.1, 0.3, -0.2])
    params = torch.tensor([0.0, 0.1, 0.5, 0.2, 0.0, -0.4, -0.1, 0.4])
    product = gw.Projective.from_params(update).matrix @ gw.Projective.from_params(params).matrix
    assert abs(float(product[2, 2]) - 1) > 0.05  # the product alone is not normalised
    composed = gw.Projective.from_params(compose_params(update, params, "projective")).matrix
    torch.testing.assert_close(composed, product / product[2, 2])


def test_compose_params_from_the_identity_is_the_update():
    update = torch.randn(3, 6)
    torch.testing.assert_close(compose_params(update, torch.zeros(3, 6)), update)


# --- parameter helpers ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_params_round_trip(kind):
    control_points = tps_control_points((3, 3), dtype=torch.float64)
    params = 0.1 * torch.randn(2, param_count(kind, (3, 3)), dtype=torch.float64)
    transform = params_to_transform(params, kind, control_points=control_points)
    assert transform.batch_shape == (2,)
    again = transform_to_params(transform, kind, control_points=control_points)
    torch.testing.assert_close(again, params)
    torch.testing.assert_close(transform_to_params(transform), params)  # kind from the type


def test_transform_to_params_across_families():
    affine = gw.Affine.from_params(0.1 * torch.randn(6, dtype=torch.float64))
    as_projective = transform_to_params(affine, "projective")
    torch.testing.assert_close(gw.Projective.from_params(as_projective).matrix, affine.matrix3x3())
    control_points = tps_control_points(dtype=torch.float64)
    as_tps = params_to_transform(
        transform_to_params(affine, "tps", control_points=control_points),
        "tps",
        control_points=control_points,
    )
    points = 2 * torch.rand(7, 2, dtype=torch.float64) - 1
    # a thin-plate spline reproduces an affine map exactly
    torch.testing.assert_close(as_tps.apply(points), affine.apply(points))


def test_init_identity_with_a_theta_bias():
    theta = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    head = init_identity_(nn.Linear(5, 6), theta)
    out = head(torch.randn(3, 5))
    torch.testing.assert_close(out, theta.expand(3, 6))
    identity = gw.Affine(out.reshape(3, 2, 3))
    torch.testing.assert_close(identity.matrix, gw.Affine.identity((3,), like=out).matrix)


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "argument"),
    [
        (lambda: _stn("similarity"), gw.GeowarpValueError, "transform"),
        (lambda: _stn(mode="cubic"), gw.GeowarpValueError, "mode"),
        (lambda: _stn(padding="wrap"), gw.GeowarpValueError, "padding"),
        (lambda: _stn(out_shape=(4,)), gw.GeowarpValueError, "out_shape"),
        (lambda: _stn("tps", control_grid=(1, 4)), gw.GeowarpValueError, "control_grid"),
        (
            lambda: SpatialTransformer(_localization(), features=0),
            gw.GeowarpValueError,
            "features",
        ),
        (
            lambda: SpatialTransformer(lambda x: x, features=4),
            gw.GeowarpTypeError,
            "localization",
        ),
        (lambda: ICSTN(_localization(), "tps"), gw.GeowarpValueError, "transform"),
        (lambda: ICSTN(_localization(), steps=0), gw.GeowarpValueError, "steps"),
        (lambda: ICSTN(lambda x: x), gw.GeowarpTypeError, "localization"),
        (lambda: ICSTN(_localization(), features=0), gw.GeowarpValueError, "features"),
        (lambda: init_identity_(nn.Linear(3, 6), torch.zeros(5)), gw.GeowarpValueError, "identity"),
        (lambda: init_identity_(nn.Linear(3, 6, bias=False)), gw.GeowarpTypeError, "head"),
        (
            lambda: params_to_transform(
                torch.zeros(30), "tps", control_points=tps_control_points()
            ),
            gw.GeowarpValueError,
            "params",
        ),
        (
            lambda: compose_params(torch.zeros(32), torch.zeros(32), "tps"),
            gw.GeowarpValueError,
            "kind",
        ),
        (lambda: compose_params(torch.zeros(6), torch.zeros(8)), gw.GeowarpValueError, "update"),
        (
            lambda: transform_to_params(gw.Projective.identity(like=torch.zeros(1)), "affine"),
            gw.GeowarpValueError,
            "affine",
        ),
        (lambda: transform_to_params(torch.eye(3)), gw.GeowarpTypeError, "transform"),
    ],
)
def test_errors_name_the_argument(build, error, argument):
    with pytest.raises(error, match=argument):
        build()


def test_wrong_localization_or_predictor_output_is_reported():
    stn = SpatialTransformer(_localization(features=8), features=9)
    with pytest.raises(gw.GeowarpValueError, match="features=9"):
        stn(_images())
    icstn = ICSTN(_localization(features=8), "projective", features=7)
    with pytest.raises(gw.GeowarpValueError, match="features=7"):
        icstn(_images())


# --- devices, dtypes, compile, persistence -------------------------------------------


def test_modules_follow_double():
    stn = _untrain(_stn("tps")).double()
    image = _images().double()
    out, transform = stn(image, return_transform=True)
    assert out.dtype == torch.float64
    assert transform.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_modules_move_to_cuda(kind):
    device = torch.device("cuda")
    stn = _untrain(_stn(kind)).to(device)
    image = _images().to(device).requires_grad_()
    out, transform = stn(image, return_transform=True)
    assert out.device.type == "cuda"
    assert transform.device.type == "cuda"
    out.sum().backward()
    assert stn.head.weight.grad is not None
    assert stn.head.weight.grad.device.type == "cuda"
    if kind != "tps":
        icstn = _icstn(kind, 0.05, steps=2).to(device)
        icstn(image).sum().backward()
        assert all(p.grad is not None for p in icstn.parameters())


# Warnings torch 2.13 raises from its own code while compiling: Dynamo warns that it traces
# through array_api_compat's functools.lru_cache and instantiates torch.autograd.Function
# itself when it meets a custom autograd function; inductor calls deprecated helpers.
COMPILE_WARNINGS = (
    "ignore:<class 'torch.autograd.function.Function'> should not be instantiated:"
    "DeprecationWarning",
    "ignore:`torch._prims_common.check` is deprecated:FutureWarning",
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning",
)


def _ignore_compile_warnings(test):
    for spec in COMPILE_WARNINGS:
        test = pytest.mark.filterwarnings(spec)(test)
    return test


@pytest.fixture(scope="module")
def working_compiler() -> None:
    """Skip unless torch.compile's default backend can compile a trivial function here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.compile(lambda x: torch.sin(x) + 1)(torch.ones(3))
    except Exception as error:  # no C++ compiler, unsupported platform, ...
        pytest.skip(f"torch.compile does not work here: {type(error).__name__}: {error}")


@_ignore_compile_warnings
@pytest.mark.usefixtures("working_compiler")
def test_stn_works_under_torch_compile():
    stn = _untrain(_stn("affine"))
    compiled = torch.compile(stn)
    image = _images()
    expected = stn(image)
    expected.square().sum().backward()
    expected_grad = stn.head.weight.grad.clone()
    stn.zero_grad()
    got = compiled(image)
    got.square().sum().backward()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stn.head.weight.grad, expected_grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_stn_compiles_quietly_in_one_graph(kind):
    # fullgraph=True fails on any graph break; no warning of any kind may appear, and the
    # first call is compiled (nothing ran eagerly before it). aot_eager traces the
    # forward and backward as inductor does, without generating code.
    stn = _untrain(_stn(kind))
    compiled = torch.compile(stn, fullgraph=True, backend="aot_eager")
    image = _images()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compiled(image)
        got.square().sum().backward()
    assert [str(w.message) for w in caught] == []
    grads = [p.grad.clone() for p in stn.parameters()]
    stn.zero_grad()
    expected = stn(image)
    expected.square().sum().backward()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for grad, parameter in zip(grads, stn.parameters(), strict=True):
        scale = parameter.grad.abs().max().item()  # float32 sums in another order
        torch.testing.assert_close(grad, parameter.grad, rtol=0, atol=1e-5 * scale)


@_ignore_compile_warnings
def test_icstn_works_under_torch_compile():
    # aot_eager traces the graph and its backward as inductor does, without generating code
    icstn = _icstn("projective", 0.05, steps=2)
    compiled = torch.compile(icstn, backend="aot_eager")
    image = _images()
    torch.testing.assert_close(compiled(image), icstn(image), rtol=1e-5, atol=1e-5)
    compiled(image).sum().backward()
    assert all(p.grad is not None for p in icstn.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_round_trip(kind):
    stn = _untrain(_stn(kind))
    buffer = io.BytesIO()
    torch.save(stn.state_dict(), buffer)
    buffer.seek(0)
    fresh = _stn(kind)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    image = _images()
    torch.testing.assert_close(fresh(image), stn(image), rtol=0, atol=0)
    assert "control_points" not in stn.state_dict()  # rebuilt from control_grid


def test_icstn_state_dict_round_trip():
    icstn = _icstn("affine", 0.05, steps=2)
    fresh = _icstn("affine", steps=2)
    fresh.load_state_dict(icstn.state_dict())
    image = _images()
    torch.testing.assert_close(fresh(image), icstn(image), rtol=0, atol=0)


def test_repr_names_the_settings():
    text = repr(_icstn(steps=2, out_shape=(4, 4)))
    assert "steps=2, transform='affine', out_shape=(4, 4)" in text


# --- learning --------------------------------------------------------------------------


def _pattern(size: int = 16) -> torch.Tensor:
    """An asymmetric pair of blobs, so that rotations and shifts are identifiable."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")

    def blob(x: float, y: float, sigma: float) -> torch.Tensor:
        return torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))

    return (blob(-0.15, -0.1, 0.22) + 0.8 * blob(0.3, 0.25, 0.12))[None, None]


def _rigid(count: int, generator: torch.Generator) -> gw.Affine:
    """Random rotations up to 0.5 rad (about 29 degrees) and shifts up to 0.2."""
    angle = (2 * torch.rand(count, generator=generator) - 1) * 0.5
    shift = (2 * torch.rand(count, 2, generator=generator) - 1) * 0.2
    cos, sin = torch.cos(angle), torch.sin(angle)
    rows = [torch.stack([cos, -sin, shift[:, 0]], -1), torch.stack([sin, cos, shift[:, 1]], -1)]
    return gw.Affine(torch.stack(rows, dim=-2))


LEARNING_BOUND = 0.1  # held-out loss after training / held-out loss of the identity


def test_stn_learns_to_undo_a_random_rigid_motion():
    generator = torch.Generator().manual_seed(1)
    pattern = _pattern()
    train = gw.warp(pattern.expand(512, -1, -1, -1), _rigid(512, generator))
    held_out = gw.warp(pattern.expand(128, -1, -1, -1), _rigid(128, generator))
    localization = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 32), nn.Tanh())
    stn = SpatialTransformer(localization, "affine", features=32)
    optimizer = torch.optim.Adam(stn.parameters(), lr=1e-2)

    def loss(images: torch.Tensor) -> torch.Tensor:
        return (stn(images) - pattern).square().mean()

    with torch.no_grad():
        before = float(loss(held_out))
    for _ in range(200):
        batch = train[torch.randint(0, 512, (64,), generator=generator)]
        optimizer.zero_grad()
        loss(batch).backward()
        optimizer.step()
    with torch.no_grad():
        after = float(loss(held_out))
    print(f"held-out loss: identity {before:.6f}, trained {after:.6f}, ratio {after / before:.4f}")
    assert after < LEARNING_BOUND * before
