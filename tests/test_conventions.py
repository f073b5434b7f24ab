"""Frames: the normalized <-> pixel matrices of `geowarp.grid`, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import geowarp as gw
from geowarp._namespace import array_namespace, backend_name
from geowarp.grid import (
    normalized_to_pixel,
    normalized_to_pixel_matrix,
    pixel_to_normalized_matrix,
)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_frame_matrices_come_in_the_library_and_dtype_asked_for(backend, align_corners, dtype):
    like = backend.asarray(np.zeros(1), dtype)
    shape = (5, 7)
    to_pixel = normalized_to_pixel_matrix(shape, align_corners=align_corners, like=like)
    to_normalized = pixel_to_normalized_matrix(shape, align_corners=align_corners, like=like)
    for matrix in (to_pixel, to_normalized):
        assert backend_name(array_namespace(matrix)) == backend.name
        assert matrix.dtype == like.dtype
        assert tuple(matrix.shape) == (3, 3)
    product = backend.to_numpy(to_pixel) @ backend.to_numpy(to_normalized)
    np.testing.assert_allclose(product, np.eye(3), atol=1e-6)
    # the matrix maps points as normalized_to_pixel does
    points = np.array([[-1.0, -1.0], [0.25, 0.5], [1.0, 1.0]])
    mapped = (backend.to_numpy(to_pixel) @ np.c_[points, np.ones(3)].T).T[:, :2]
    expected = normalized_to_pixel(points, shape, align_corners=align_corners)
    np.testing.assert_allclose(mapped, expected, rtol=1e-6)


def test_frame_matrices_default_to_numpy_float64_and_take_dtype():
    matrix = normalized_to_pixel_matrix((2, 4))
    assert isinstance(matrix, np.ndarray)
    assert matrix.dtype == np.float64
    assert pixel_to_normalized_matrix((2, 4), dtype=np.float32).dtype == np.float32
    with pytest.raises(gw.GeowarpTypeError, match="real floating dtype"):
        pixel_to_normalized_matrix((2, 4), dtype=np.int32)


def test_a_pixel_homography_round_trips_through_the_frames(backend):
    # pixel map M (output pixels to input pixels) as a normalized Projective
    like = backend.asarray(np.zeros(1))
    shape = (6, 8)
    pixel = np.array([[1.1, 0.1, 0.5], [-0.05, 0.9, 1.0], [0.001, 0.002, 1.0]])
    to_pixel = backend.to_numpy(normalized_to_pixel_matrix(shape, like=like))
    to_normalized = backend.to_numpy(pixel_to_normalized_matrix(shape, like=like))
    transform = gw.Projective(backend.asarray(to_normalized @ pixel @ to_pixel))
    points = np.array([[0.0, 0.0], [3.0, 2.0], [7.0, 5.0]])
    normalized = gw.grid.pixel_to_normalized(points, shape)
    mapped = normalized_to_pixel(
        backend.to_numpy(transform.apply(backend.asarray(normalized))), shape
    )
    homogeneous = (pixel @ np.c_[points, np.ones(3)].T).T
    np.testing.assert_allclose(mapped, homogeneous[:, :2] / homogeneous[:, 2:], rtol=1e-10)
