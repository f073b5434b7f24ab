"""Affine and projective transforms: the families with a matrix and closed-form algebra."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np

from .._errors import GeowarpValueError
from .._namespace import array_namespace, join, known_values, read_variable
from .._namespace import device as array_device
from ..autodiff import Op, call
from ..grid import base_axes, creation_namespace
from ._base import (
    Transform,
    check_matrix,
    check_points,
    composed_batch,
    joined,
)
from ._matrix_ops import AFFINE_APPLY, AFFINE_GRID, PROJECTIVE_APPLY, PROJECTIVE_GRID
from ._pixel import check_pixel_settings, normalized_from_pixel, pixel_from_normalized

if TYPE_CHECKING:
    from ..estimate import FailedEstimation


def _eye(rows: int, xp: Any, like: Any) -> Any:
    return xp.eye(rows, 3, dtype=like.dtype, device=array_device(like))


class MatrixTransform(Transform):
    """Shared behaviour of `Affine` and `Projective`: a matrix, closed-form ``@`` and inverse."""

    __slots__ = ("_matrix",)
    _num_params: ClassVar[int]
    _param_rows: ClassVar[int]
    _grid_op: ClassVar[Op]

    def _rows(self) -> Any:
        """The rows of the matrix the point map uses: (..., 2, 3) affine, (..., 3, 3) projective."""
        raise NotImplementedError

    def __init__(self, matrix: Any) -> None:
        (matrix,), _ = join(("matrix", matrix))  # a sequence becomes a numpy array
        self._matrix = check_matrix(matrix, self._shapes(), "matrix")

    @classmethod
    def _shapes(cls) -> tuple[tuple[int, int], ...]:
        raise NotImplementedError

    @property
    def matrix(self) -> Any:
        """The matrix as given to the constructor."""
        return self._matrix

    @property
    def _reference(self) -> Any:
        return self._matrix

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading batch dimensions of the matrix."""
        return tuple(self._matrix.shape[:-2])

    def matrix3x3(self) -> Any:
        """The matrix as (..., 3, 3), completing an affine (..., 2, 3) with ``[0, 0, 1]``."""
        xp = self.xp
        if self._matrix.shape[-2] == 3:
            return self._matrix
        # [0, 0, 1] per item; zeros_like keeps a batch unknown while tracing
        last = xp.zeros_like(self._matrix[..., :1, :]) + _eye(3, xp, self._matrix)[2:, :]
        return xp.concat([self._matrix, last], axis=-2)

    def _grid(self, height: int, width: int, align_corners: bool) -> Any:
        # Separable: one broadcast add per pixel instead of a matrix product.
        xs, ys = base_axes((height, width), align_corners=align_corners, like=self._reference)
        return call(self._grid_op, self._rows(), xs, ys)

    def __matmul__(self, other: Transform) -> Transform:
        if isinstance(other, MatrixTransform):
            # numpy joins the other's library
            left = cast(MatrixTransform, joined(self, other.matrix, "right"))
            right = cast(MatrixTransform, joined(other, left.matrix, "left"))
            join(("left", left.matrix), ("right", right.matrix))  # two libraries: an error
            composed_batch(left.batch_shape, right.batch_shape)
            xp = left.xp
            dtype = xp.result_type(left.dtype, right.dtype)
            product = xp.astype(left.matrix3x3(), dtype, copy=False) @ xp.astype(
                right.matrix3x3(), dtype, copy=False
            )
            if isinstance(left, Affine) and isinstance(right, Affine):
                return Affine(product[..., :2, :])
            return Projective(product)
        return super().__matmul__(other)

    @classmethod
    def identity(
        cls,
        batch_shape: Sequence[int] = (),
        *,
        like: Any = None,
        dtype: Any = None,
        device: Any = None,
    ) -> Any:
        """The identity, with ``batch_shape`` leading dimensions.

        The namespace, dtype and device come from ``like`` (numpy float64 when
        omitted); ``dtype`` and ``device`` override them.
        """
        xp, dtype, device = creation_namespace(like, dtype, device)
        eye = xp.eye(cls._param_rows, 3, dtype=dtype, device=device)
        return cls(xp.zeros((*batch_shape, cls._param_rows, 3), dtype=dtype, device=device) + eye)

    @classmethod
    def from_pixel_matrix(
        cls,
        matrix: Any,
        in_shape: Sequence[int],
        out_shape: Sequence[int] | None = None,
        *,
        align_corners: bool = False,
        direction: str = "forward",
    ) -> Any:
        """The transform of a pixel-frame matrix from OpenCV or scikit-image.

        Pixel frames put pixel centres at integer ``(x, y)`` = (column, row).
        OpenCV's ``warpAffine``/``warpPerspective`` take the forward map (input
        pixel to output pixel) unless ``flags`` has ``cv2.WARP_INVERSE_MAP``;
        scikit-image's ``tform.params`` is the forward map too. geowarp's
        transforms map the other way, output to input, in the normalized frame:
        the result is ``P_in @ A @ N_out``, ``A`` the output-to-input pixel map
        and ``P_in``/``N_out`` the `geowarp.grid` frame matrices.

        Parameters
        ----------
        matrix : array of shape (..., 3, 3), or (..., 2, 3) for `Affine`
            The pixel matrix, any library; a batch in leading dimensions. For
            `Affine` a last row other than ``[0, 0, 1]`` is refused (use
            `Projective`). The result keeps its library, dtype and device, and
            is differentiable w.r.t. it.
        in_shape : (H, W)
            The input (source) image's size.
        out_shape : (H_out, W_out), optional
            The output image's size (OpenCV's ``dsize`` is ``(W_out, H_out)``);
            ``in_shape`` when omitted.
        align_corners : bool
            The normalized frame of the result: warp with the same value.
        direction : {"forward", "inverse"}
            ``"forward"``: ``matrix`` maps input pixels to output pixels (OpenCV's
            default, scikit-image's ``params``); ``"inverse"``: output pixels to
            input pixels (OpenCV with ``WARP_INVERSE_MAP``, the ``inverse_map``
            of ``skimage.transform.warp``).

        Returns
        -------
        Affine or Projective
            For ``gw.warp(image, T, out_shape)``: ``cv2.warpAffine(image, matrix,
            (W_out, H_out))`` and ``skimage.transform.warp(image, tform.inverse,
            output_shape=out_shape, order=1)`` (with ``tform.params == matrix``)
            agree with it up to interpolation rounding.

        Examples
        --------
        ``cv2.warpAffine(image, forward, dsize=(5, 3))`` with this forward map
        shifts a 3x4 image one pixel right into a 3x5 output, reading output
        pixel ``(x, y)`` at input pixel ``(x - 1, y)``:

        >>> import numpy as np
        >>> import geowarp as gw
        >>> forward = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
        >>> shift = gw.Affine.from_pixel_matrix(forward, in_shape=(3, 4), out_shape=(3, 5))
        >>> shift.matrix + 0.0  # normalized output -> input
        array([[ 1.25,  0.  , -0.25],
               [ 0.  ,  1.  ,  0.  ]])
        >>> image = np.arange(12.0).reshape(1, 1, 3, 4)
        >>> gw.warp(image, shift, (3, 5))[0, 0]  # what OpenCV gives
        array([[ 0.,  0.,  1.,  2.,  3.],
               [ 0.,  4.,  5.,  6.,  7.],
               [ 0.,  8.,  9., 10., 11.]])

        The same reading in pixels, through the `geowarp.grid` conversions:

        >>> from geowarp.grid import normalized_to_pixel, pixel_to_normalized
        >>> out_pixel = pixel_to_normalized(np.array([[4.0, 2.0]]), (3, 5))
        >>> normalized_to_pixel(shift.apply(out_pixel), (3, 4))
        array([[3., 2.]])
        """
        in_hw, out_hw, forward = check_pixel_settings(in_shape, out_shape, direction)
        # the constructor checks shape and dtype, and refuses a perspective row for Affine
        pixel = cls(matrix).matrix3x3()
        if forward:  # input -> output pixels: change frames, then invert in closed form
            normalized = normalized_from_pixel(pixel, in_hw, out_hw, align_corners)
            return cls(normalized[..., : cls._param_rows, :]).inverse()
        normalized = normalized_from_pixel(pixel, out_hw, in_hw, align_corners)
        return cls(normalized[..., : cls._param_rows, :])

    def to_pixel_matrix(
        self,
        in_shape: Sequence[int],
        out_shape: Sequence[int] | None = None,
        *,
        align_corners: bool = False,
        direction: str = "forward",
    ) -> Any:
        """The pixel-frame matrix (..., 3, 3) for OpenCV or scikit-image.

        The inverse of `from_pixel_matrix`, with the same arguments: the
        default ``direction="forward"`` gives the input-to-output pixel map
        that ``cv2.warpAffine``/``warpPerspective`` (without
        ``WARP_INVERSE_MAP``) and scikit-image's ``AffineTransform(matrix=...)``
        take. In the transform's library, dtype and device; differentiable.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> zoom = gw.Affine(np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]))  # 2x zoom in
        >>> zoom.to_pixel_matrix((4, 4))
        array([[ 2. ,  0. , -1.5],
               [ 0. ,  2. , -1.5],
               [ 0. ,  0. ,  1. ]])
        >>> zoom.to_pixel_matrix((4, 4), direction="inverse")
        array([[0.5 , 0.  , 0.75],
               [0.  , 0.5 , 0.75],
               [0.  , 0.  , 1.  ]])
        """
        in_hw, out_hw, forward = check_pixel_settings(in_shape, out_shape, direction)
        if forward:
            inverse = cast(MatrixTransform, self.inverse())
            return pixel_from_normalized(inverse.matrix3x3(), in_hw, out_hw, align_corners)
        return pixel_from_normalized(self.matrix3x3(), out_hw, in_hw, align_corners)

    @classmethod
    def param_count(cls) -> int:
        """How many numbers `from_params` takes: 6 (affine) or 8 (projective).

        Examples
        --------
        >>> import geowarp as gw
        >>> gw.Affine.param_count(), gw.Projective.param_count()
        (6, 8)
        """
        return cls._num_params

    @classmethod
    def from_params(cls, params: Any) -> Any:
        """The IC-STN parameterisation: identity plus ``params`` laid out row by row.

        ``Affine``: 6 numbers, ``[[1 + p0, p1, p2], [p3, 1 + p4, p5]]``.
        ``Projective``: 8 numbers, ``I + [[p0, p1, p2], [p3, p4, p5], [p6, p7, 0]]``.
        Zeros are the identity; ``params`` of shape (..., P) give a batch
        ``params.shape[:-1]``, differentiable w.r.t. ``params``.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> gw.Projective.from_params(np.arange(8.0)).matrix
        array([[1., 1., 2.],
               [3., 5., 5.],
               [6., 7., 1.]])
        """
        params = read_variable(params)
        xp = array_namespace(params)
        if params.ndim < 1 or params.shape[-1] != cls._num_params:
            raise GeowarpValueError(
                f"params must have shape (..., {cls._num_params}); got {tuple(params.shape)}"
            )
        padding = cls._param_rows * 3 - cls._num_params
        if padding:  # zeros_like of a slice: the batch may be unknown while tracing
            params = xp.concat([params, xp.zeros_like(params[..., :padding])], axis=-1)
        rows = xp.stack([params[..., 3 * i : 3 * i + 3] for i in range(cls._param_rows)], axis=-2)
        return cls(rows + _eye(cls._param_rows, xp, params))

    def as_params(self) -> Any:
        """The inverse of `from_params`: the matrix minus the identity, row by row.

        A homography is first scaled to ``H[2, 2] == 1``; one with ``H[2, 2]
        == 0`` (to ``eps`` of its largest entry) has no parameter vector and
        raises `GeowarpValueError` where its values are known (under tracing
        its parameters are non-finite).

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> gw.Affine(np.array([[2.0, 0.0, 0.5], [0.0, 1.0, 0.0]])).as_params()
        array([1. , 0. , 0.5, 0. , 0. , 0. ])
        """
        xp = self.xp
        rows = self._normalized_rows() - _eye(self._param_rows, xp, self._matrix)
        flat = xp.concat([rows[..., i, :] for i in range(self._param_rows)], axis=-1)
        return flat[..., : self._num_params]

    def _normalized_rows(self) -> Any:
        # the rows as_params reads; Projective removes its scale first
        return self._rows()


class Affine(MatrixTransform, family="affine"):
    """An affine map ``p -> A[:2, :2] @ p + A[:2, 2]`` from output to input points.

    Parameters
    ----------
    matrix : array of shape (..., 2, 3) or (..., 3, 3)
        The map, in the normalized frame unless you apply it to pixel points
        yourself. A 3x3 matrix's last row must be ``[0, 0, 1]`` (to the
        dtype's precision, ``sqrt(eps)``): another last row is a perspective
        map, refused with a `GeowarpValueError` that points to `Projective`
        (checked where the values are known, not under tracing). Leading
        dimensions are a batch of transforms. This is exactly the ``theta`` of
        ``torch.nn.functional.affine_grid``.

    Notes
    -----
    The matrix maps output (target) points to input (source) points. OpenCV,
    scikit-image and kornia describe a warp by the opposite, forward map:
    theirs is ``Affine(matrix).inverse()`` (in their pixel frame).

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> shift = gw.Affine(np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]))
    >>> shift.apply(np.array([[0.0, 0.0]]))
    array([[0.5, 0. ]])
    >>> (shift @ shift.inverse()).matrix
    array([[1., 0., 0.],
           [0., 1., 0.]])
    >>> gw.Affine.from_params(np.zeros(6)).matrix
    array([[1., 0., 0.],
           [0., 1., 0.]])
    """

    __slots__ = ()
    _num_params = 6
    _param_rows = 2
    _grid_op = AFFINE_GRID

    def __init__(self, matrix: Any) -> None:
        super().__init__(matrix)
        if self._matrix.shape[-2] == 3:
            _check_affine_row(self._matrix)

    def _rows(self) -> Any:
        return self._matrix[..., :2, :]

    @classmethod
    def _shapes(cls) -> tuple[tuple[int, int], ...]:
        return ((2, 3), (3, 3))

    @classmethod
    def from_estimate(
        cls, source_points: Any, target_points: Any, weights: Any = None
    ) -> Affine | FailedEstimation:
        """The weighted least-squares affine map with ``T.apply(target_points) ~= source_points``.

        Parameters
        ----------
        source_points, target_points : arrays of shape (..., N, 2)
            Corresponding points, N >= 3; leading dimensions are a batch of fits.
        weights : array of shape (..., N), optional
            Non-negative weight of each pair; a zero weight ignores the pair.

        Returns
        -------
        Affine or FailedEstimation
            The fit (computed in float64 where the library has it, returned in
            the points' dtype; differentiable), or a falsy `FailedEstimation`
            saying why there is none (fewer than 3 points, mismatched counts,
            non-finite points, all target points on one line).

        Notes
        -----
        geowarp's direction: the fit maps target (output) points to source
        (input) points. scikit-image, OpenCV and kornia estimate the opposite,
        forward map: theirs is ``T.inverse()``. Residuals: `geowarp.estimate.residuals`.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> target = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> gw.Affine.from_estimate(2.0 * target + 1.0, target).matrix + 0.0
        array([[2., 0., 1.],
               [0., 2., 1.]])
        """
        from ..estimate._fit import fit_affine

        return fit_affine(source_points, target_points, weights)

    def apply(self, points: Any) -> Any:
        """Map points (..., N, 2) to (..., N, 2).

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> gw.Affine(np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]])).apply(np.ones((1, 2)))
        array([[2., 2.]])
        """
        points = check_points(points, self)
        matrix = self.xp.astype(self._rows(), points.dtype, copy=False)
        return call(AFFINE_APPLY, matrix, points)

    def inverse(self) -> Affine:
        """The inverse map, in closed form (non-finite where the matrix is singular).

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> gw.Affine(np.array([[2.0, 0.0, 1.0], [0.0, 4.0, 0.0]])).inverse().matrix + 0.0
        array([[ 0.5 ,  0.  , -0.5 ],
               [ 0.  ,  0.25,  0.  ]])
        """
        xp, m = self.xp, self._matrix
        a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
        det = a * d - b * c
        inv = xp.stack([xp.stack([d, -b], axis=-1), xp.stack([-c, a], axis=-1)], axis=-2)
        inv = inv / det[..., None, None]
        shift = -(inv @ m[..., :2, 2:3])
        return Affine(xp.concat([inv, shift], axis=-1))


def _check_affine_row(matrix: Any) -> None:
    # the last row of a 3x3 affine matrix, where known: [0, 0, 1] or an error
    values = known_values(matrix)
    if values is None:
        return
    tolerance = float(np.sqrt(np.finfo(values.dtype).eps))
    off = np.abs(values[..., 2, :] - np.array([0.0, 0.0, 1.0])) > tolerance
    if off.any():
        index = np.argwhere(off.any(axis=-1))[0] if off.ndim > 1 else ()
        row = values[(*index, 2)].tolist()
        where = f" (batch item {tuple(int(i) for i in index)})" if off.ndim > 1 else ""
        raise GeowarpValueError(
            f"matrix's last row is {row}{where}, not [0, 0, 1]: an Affine would drop this "
            "perspective part; use gw.Projective(matrix) for a projective map"
        )


class Projective(MatrixTransform, family="projective"):
    """A projective map (homography) from output to input points.

    ``p -> (H @ [x, y, 1])[:2] / (H @ [x, y, 1])[2]``.

    Parameters
    ----------
    matrix : array of shape (..., 3, 3)
        The homography; scale invariant (``s * H`` is the same map for s != 0).

    Notes
    -----
    Like `Affine`, the matrix maps output (target) points to input (source)
    points; the forward homography of OpenCV or kornia is ``.inverse()``.

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> tilt = gw.Projective(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 1.0]]))
    >>> tilt.apply(np.array([[1.0, 1.0]]))
    array([[0.66666667, 0.66666667]])
    """

    __slots__ = ()
    _num_params = 8
    _param_rows = 3
    _grid_op = PROJECTIVE_GRID

    def _rows(self) -> Any:
        return self._matrix

    @classmethod
    def _shapes(cls) -> tuple[tuple[int, int], ...]:
        return ((3, 3),)

    def _normalized_rows(self) -> Any:
        # as_params scales H[2, 2] to 1: a homography with H[2, 2] = 0 (the output
        # centre on the horizon) has no parameter vector
        values = known_values(self._matrix)
        if values is not None:
            corner = np.abs(values[..., 2, 2])
            scale = np.abs(values).max(axis=(-2, -1))
            bad = ~(corner > np.finfo(values.dtype).eps * scale)
            if bad.any():
                where = f" (batch item {tuple(int(i) for i in np.argwhere(bad)[0])})"
                raise GeowarpValueError(
                    f"matrix[..., 2, 2] is 0{where if bad.ndim else ''}: as_params scales it to "
                    "1, so this homography (the output centre on its horizon) has no "
                    "parameter vector"
                )
        return self._matrix / self._matrix[..., 2:3, 2:3]

    @classmethod
    def from_estimate(
        cls, source_points: Any, target_points: Any, weights: Any = None
    ) -> Projective | FailedEstimation:
        """The homography with ``T.apply(target_points) ~= source_points``: normalized DLT.

        Hartley's normalization of both point sets, the (weighted) algebraic
        least squares as the eigenvector of the smallest eigenvalue of
        ``A^T W A``, scaled to ``H[2, 2] = 1`` where that is not 0.

        Parameters
        ----------
        source_points, target_points : arrays of shape (..., N, 2)
            Corresponding points, N >= 4; leading dimensions are a batch of fits.
        weights : array of shape (..., N), optional
            Non-negative weight of each pair; a zero weight ignores the pair.

        Returns
        -------
        Projective or FailedEstimation
            The fit (computed in float64 where the library has it, returned in
            the points' dtype; differentiable), or a falsy `FailedEstimation`
            saying why there is none (fewer than 4 points, mismatched counts,
            non-finite points, source or target points on one line, 3 of 4
            points on one line, or any other configuration that leaves the
            homography undetermined).

        Notes
        -----
        geowarp's direction: the fit maps target (output) points to source
        (input) points. scikit-image, OpenCV (``cv2.findHomography``) and
        kornia estimate the opposite, forward map: theirs is ``T.inverse()``.
        Residuals: `geowarp.estimate.residuals`; outliers: `geowarp.estimate.ransac`.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> target = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> tilt = gw.Projective(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 1.0]]))
        >>> fit = gw.Projective.from_estimate(tilt.apply(target), target)
        >>> bool(np.allclose(fit.matrix, tilt.matrix))
        True
        """
        from ..estimate._fit import fit_projective

        return fit_projective(source_points, target_points, weights)

    def apply(self, points: Any) -> Any:
        """Map points (..., N, 2) to (..., N, 2) through the homography.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> gw.Projective(2.0 * np.eye(3)).apply(np.array([[0.25, -1.0]]))
        array([[ 0.25, -1.  ]])
        """
        points = check_points(points, self)
        matrix = self.xp.astype(self._rows(), points.dtype, copy=False)
        return call(PROJECTIVE_APPLY, matrix, points)

    def inverse(self) -> Projective:
        """The inverse homography: adjugate over determinant.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> h = gw.Projective(np.array([[1.0, 0.2, 0.1], [0.0, 1.0, 0.3], [0.1, 0.0, 1.0]]))
        >>> bool(np.allclose((h @ h.inverse()).matrix, np.eye(3)))
        True
        """
        xp, m = self.xp, self._matrix

        def cofactor(r0: int, r1: int, c0: int, c1: int) -> Any:
            return m[..., r0, c0] * m[..., r1, c1] - m[..., r0, c1] * m[..., r1, c0]

        adjugate = xp.stack(
            [
                xp.stack(
                    [cofactor(1, 2, 1, 2), -cofactor(0, 2, 1, 2), cofactor(0, 1, 1, 2)], axis=-1
                ),
                xp.stack(
                    [-cofactor(1, 2, 0, 2), cofactor(0, 2, 0, 2), -cofactor(0, 1, 0, 2)], axis=-1
                ),
                xp.stack(
                    [cofactor(1, 2, 0, 1), -cofactor(0, 2, 0, 1), cofactor(0, 1, 0, 1)], axis=-1
                ),
            ],
            axis=-2,
        )
        det = xp.sum(m[..., 0, :] * adjugate[..., :, 0], axis=-1)
        return Projective(adjugate / det[..., None, None])
