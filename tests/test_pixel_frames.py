"""Pixel-frame matrices: `MatrixTransform.from_pixel_matrix` and `to_pixel_matrix`.

Round trips run on every backend; the peers (OpenCV, scikit-image) warp a
real photograph with the same pixel matrix as ``gw.warp`` and must agree on
the interior, where neither touches the zero border.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import geowarp as gw
from geowarp._namespace import array_namespace
from geowarp.grid import normalized_to_pixel, pixel_to_normalized

IN_SHAPE = (96, 120)  # (H, W) of the input image
OUT_SHAPE = (80, 136)  # (H_out, W_out): a different size, so the frames cannot be confused
FAMILIES = (gw.Affine, gw.Projective)

# Forward pixel maps (input pixel -> output pixel): rotation, scale, shear, shift,
# and for the homography a perspective row, all keeping the photograph in view.
AFFINE_FORWARD = np.array([[0.93, -0.21, 14.0], [0.17, 0.88, -3.5], [0.0, 0.0, 1.0]])
PROJECTIVE_FORWARD = np.array([[0.93, -0.21, 14.0], [0.17, 0.88, -3.5], [4e-4, -9e-4, 1.0]])


def forward_matrix(family: type[gw.transforms.MatrixTransform]) -> np.ndarray:
    return AFFINE_FORWARD if family is gw.Affine else PROJECTIVE_FORWARD


def batch_of(family: type[gw.transforms.MatrixTransform]) -> np.ndarray:
    """Two different forward pixel maps (2, 3, 3)."""
    second = forward_matrix(family) @ np.array([[1.1, 0.05, -2.0], [0.0, 0.95, 4.0], [0, 0, 1.0]])
    return np.stack([forward_matrix(family), second])


def pixel_map(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixel points (N, 2) through a pixel matrix (3, 3), with the projective divide."""
    mapped = np.concatenate([points, np.ones_like(points[:, :1])], axis=1) @ matrix.T
    return mapped[:, :2] / mapped[:, 2:]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("direction", ["forward", "inverse"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_round_trip(backend: Any, family: Any, direction: str, align_corners: bool) -> None:
    pixel = backend.asarray(batch_of(family))
    settings = {"align_corners": align_corners, "direction": direction}
    transform = family.from_pixel_matrix(pixel, IN_SHAPE, OUT_SHAPE, **settings)
    assert transform.batch_shape == (2,)
    assert array_namespace(transform.matrix) is array_namespace(pixel)
    back = transform.to_pixel_matrix(IN_SHAPE, OUT_SHAPE, **settings)
    assert array_namespace(back) is array_namespace(pixel)
    assert tuple(back.shape) == (2, 3, 3)
    np.testing.assert_allclose(backend.to_numpy(back), batch_of(family), rtol=1e-9, atol=1e-9)
    # and the other way: a normalized transform survives a trip through pixels
    again = family.from_pixel_matrix(back, IN_SHAPE, OUT_SHAPE, **settings)
    np.testing.assert_allclose(
        backend.to_numpy(again.matrix), backend.to_numpy(transform.matrix), atol=1e-9
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_dtype_kept(backend: Any, family: Any) -> None:
    pixel = backend.asarray(forward_matrix(family), dtype="float32")
    transform = family.from_pixel_matrix(pixel, IN_SHAPE, OUT_SHAPE)
    assert transform.dtype == pixel.dtype
    back = transform.to_pixel_matrix(IN_SHAPE, OUT_SHAPE, direction="inverse")
    assert back.dtype == pixel.dtype
    expected = np.linalg.inv(forward_matrix(family))
    np.testing.assert_allclose(
        backend.to_numpy(back) / backend.to_numpy(back)[2, 2], expected / expected[2, 2], atol=2e-4
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_is_per_item(family: Any) -> None:
    pixels = batch_of(family)
    batched = family.from_pixel_matrix(pixels, IN_SHAPE, OUT_SHAPE)
    for item, pixel in enumerate(pixels):
        single = family.from_pixel_matrix(pixel, IN_SHAPE, OUT_SHAPE)
        np.testing.assert_allclose(batched.matrix[item], single.matrix, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_points_map_like_pixels(backend: Any, family: Any, align_corners: bool) -> None:
    # out pixel -> T in the normalized frames -> in pixel equals the inverse pixel map
    forward = forward_matrix(family)
    transform = family.from_pixel_matrix(
        backend.asarray(forward), IN_SHAPE, OUT_SHAPE, align_corners=align_corners
    )
    out_pixels = np.array([[0.0, 0.0], [135.0, 79.0], [17.25, 40.5], [-3.0, 90.0]])
    normalized = pixel_to_normalized(
        backend.asarray(out_pixels), OUT_SHAPE, align_corners=align_corners
    )
    in_pixels = normalized_to_pixel(
        transform.apply(normalized), IN_SHAPE, align_corners=align_corners
    )
    expected = pixel_map(np.linalg.inv(forward), out_pixels)
    np.testing.assert_allclose(backend.to_numpy(in_pixels), expected, atol=1e-9)


def test_affine_refuses_a_perspective_matrix() -> None:
    with pytest.raises(gw.GeowarpValueError, match="Projective"):
        gw.Affine.from_pixel_matrix(PROJECTIVE_FORWARD, IN_SHAPE)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"direction": "backward"}, "direction"),
        ({"in_shape": (3,)}, "in_shape"),
        ({"out_shape": (3, -1)}, "out_shape"),
    ],
)
def test_bad_settings(arguments: dict[str, Any], message: str) -> None:
    call = {"in_shape": IN_SHAPE, **arguments}
    with pytest.raises(gw.GeowarpValueError, match=message):
        gw.Projective.from_pixel_matrix(PROJECTIVE_FORWARD, **call)
    transform = gw.Projective.identity()
    with pytest.raises(gw.GeowarpValueError, match=message):
        transform.to_pixel_matrix(**call)


def test_differentiable_in_the_pixel_matrix(torch_backend: Any) -> None:
    import torch

    def normalized(pixel: torch.Tensor) -> torch.Tensor:
        return gw.Projective.from_pixel_matrix(pixel, IN_SHAPE, OUT_SHAPE).matrix

    pixel = torch.tensor(PROJECTIVE_FORWARD, requires_grad=True)
    assert torch.autograd.gradcheck(normalized, (pixel,))


# --- peers on a real photograph ------------------------------------------------------------


@pytest.fixture(scope="module")
def photograph() -> np.ndarray:
    """The camera man, (IN_SHAPE), float64 in [0, 1]."""
    data = pytest.importorskip("skimage.data")
    image = data.camera()[96:480:4, 16:496:4].astype(np.float64) / 255.0
    assert image.shape == IN_SHAPE
    return image


def interior(inverse_pixel: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """Output pixels whose source point is at least ``margin`` pixels inside the input."""
    rows, cols = np.mgrid[0 : OUT_SHAPE[0], 0 : OUT_SHAPE[1]]
    points = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
    source = pixel_map(inverse_pixel, points).reshape(*OUT_SHAPE, 2)
    height, width = IN_SHAPE
    inside = (source[..., 0] >= margin) & (source[..., 0] <= width - 1 - margin)
    return inside & (source[..., 1] >= margin) & (source[..., 1] <= height - 1 - margin)


def geowarp_result(photograph: np.ndarray, transform: Any) -> np.ndarray:
    return np.asarray(gw.warp(photograph[None, None], transform, OUT_SHAPE)[0, 0])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_agrees_with_opencv(photograph: np.ndarray, family: Any, direction: str) -> None:
    cv2 = pytest.importorskip("cv2")
    forward = forward_matrix(family)
    matrix = forward if direction == "forward" else np.linalg.inv(forward)
    flags = cv2.INTER_LINEAR | (cv2.WARP_INVERSE_MAP if direction == "inverse" else 0)
    dsize = (OUT_SHAPE[1], OUT_SHAPE[0])  # OpenCV's (width, height)
    border = {"borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    if family is gw.Affine:
        expected = cv2.warpAffine(photograph, matrix[:2], dsize, flags=flags, **border)
    else:
        expected = cv2.warpPerspective(photograph, matrix, dsize, flags=flags, **border)
    transform = family.from_pixel_matrix(matrix, IN_SHAPE, OUT_SHAPE, direction=direction)
    inside = interior(np.linalg.inv(forward))
    assert inside.mean() > 0.5  # most of the output compares
    difference = np.abs(geowarp_result(photograph, transform) - expected)[inside]
    # OpenCV rounds coordinates and weights to 1/32 pixel: a sharp edge moves by up to 1/64
    assert difference.max() < 0.02
    assert difference.mean() < 1e-3


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_agrees_with_scikit_image(photograph: np.ndarray, family: Any, direction: str) -> None:
    transform_module = pytest.importorskip("skimage.transform")
    kind = transform_module.AffineTransform if family is gw.Affine else None
    kind = kind or transform_module.ProjectiveTransform
    tform = kind(matrix=forward_matrix(family))
    expected = transform_module.warp(
        photograph, tform.inverse, output_shape=OUT_SHAPE, order=1, mode="constant", cval=0
    )
    matrix = tform.params if direction == "forward" else tform.inverse.params
    transform = family.from_pixel_matrix(matrix, IN_SHAPE, OUT_SHAPE, direction=direction)
    inside = interior(np.linalg.inv(forward_matrix(family)))
    difference = np.abs(geowarp_result(photograph, transform) - expected)[inside]
    assert difference.max() < 1e-9  # the same bilinear arithmetic: rounding only


@pytest.mark.parametrize("family", FAMILIES)
def test_to_pixel_matrix_drives_opencv(photograph: np.ndarray, family: Any) -> None:
    # the way back: a normalized transform's pixel matrix makes OpenCV warp alike
    cv2 = pytest.importorskip("cv2")
    transform = family.from_pixel_matrix(forward_matrix(family), IN_SHAPE, OUT_SHAPE)
    matrix = np.asarray(transform.to_pixel_matrix(IN_SHAPE, OUT_SHAPE))
    dsize = (OUT_SHAPE[1], OUT_SHAPE[0])
    if family is gw.Affine:
        expected = cv2.warpAffine(photograph, matrix[:2], dsize, flags=cv2.INTER_LINEAR)
    else:
        expected = cv2.warpPerspective(photograph, matrix, dsize, flags=cv2.INTER_LINEAR)
    inside = interior(np.linalg.inv(forward_matrix(family)))
    difference = np.abs(geowarp_result(photograph, transform) - expected)[inside]
    assert difference.max() < 0.02
