"""The thin-plate spline transform."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import GeowarpValueError, NotInvertibleError
from .._namespace import array_namespace, join, known_values, read_variable
from .._namespace import device as array_device
from .._ops import broadcast_shapes, content_key
from ..autodiff import call
from ..grid import check_shape, creation_namespace
from ._base import Transform, check_points, grid_points
from ._tps_ops import GRID_WEIGHTS, TPS_APPLY, TPS_GRID, map_points, maps_points

if TYPE_CHECKING:
    from ..estimate import FailedEstimation


class ThinPlateSpline(Transform, family="tps"):
    """A thin-plate spline taking target landmarks exactly (or nearly) to source landmarks.

    The smoothest map (least bending energy) with ``T.apply(target_points) ==
    source_points``; with ``regularization > 0`` it trades exactness for
    smoothness. The target points are the kernel centres and stay fixed; the
    map is linear in ``source_points``, and gradients reach them (as when an
    STN predicts where its control points land in the input).

    Parameters
    ----------
    source_points : array of shape (..., K, 2)
        Where the landmarks are in the input (source) image.
    target_points : array of shape (..., K, 2)
        Where they are in the output (target) image: the kernel centres.
        Unbatched target points shared by a batch of source points are the
        fast, common STN case.
    regularization : float
        Non-negative smoothing weight added to the kernel's diagonal.

    Notes
    -----
    Like every geowarp transform it maps output points to input points, so
    ``gw.warp(source_image, tps, target_shape)`` moves the source landmarks
    onto the target ones. There is no closed-form inverse; fit one with the
    landmark roles swapped.

    A sampling grid is ``W @ source_points`` with interpolation weights ``W``
    (H_out * W_out, K) that depend only on the target points and the grid.
    For numpy arrays and for torch tensors that need no gradient (an STN's
    control-point buffer), geowarp keeps the weights of the last few grids
    (at most 128 MiB, computed in float64) and rebuilds them only when the
    target points change: by value in host memory, through the tensor's
    version counter on accelerators. A numpy grid whose weights would exceed
    128 MiB maps its pixel centres in float64 instead. Elsewhere the grid is
    `apply` at the pixel centres. On numpy every sum over the landmarks is
    taken in one fixed order, so each point's value is the same however many
    points are mapped with it (`geowarp.dask` relies on it).

    Examples
    --------
    >>> import numpy as np
    >>> import geowarp as gw
    >>> target = np.array([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5], [0.0, 0.0]])
    >>> source = target + np.array([0.0, 0.0, 0.0, 0.0, 0.1])[:, None]
    >>> tps = gw.ThinPlateSpline.from_landmarks(source, target)
    >>> bool(np.allclose(tps.apply(target), source))
    True
    """

    __slots__ = ("_regularization", "_source_points", "_target_points")
    constant_fields = ("_target_points",)

    def __init__(
        self, source_points: Any, target_points: Any, *, regularization: float = 0.0
    ) -> None:
        (source_points, target_points), _ = join(
            ("source_points", source_points), ("target_points", target_points)
        )
        xp = array_namespace(source_points, target_points)
        for name, points in (("source_points", source_points), ("target_points", target_points)):
            if points.ndim < 2 or points.shape[-1] != 2:
                raise GeowarpValueError(
                    f"{name} must have shape (..., K, 2); got {tuple(points.shape)}"
                )
        if source_points.shape[-2] != target_points.shape[-2]:
            raise GeowarpValueError(
                f"source_points and target_points must hold the same number of landmarks; got "
                f"{source_points.shape[-2]} and {target_points.shape[-2]}"
            )
        if source_points.shape[-2] < 3:
            raise GeowarpValueError(
                f"a thin-plate spline needs at least 3 landmarks; got {source_points.shape[-2]}"
            )
        if not regularization >= 0:
            raise GeowarpValueError(f"regularization must be >= 0; got {regularization!r}")
        dtype = xp.result_type(source_points.dtype, target_points.dtype)
        self._source_points = xp.astype(source_points, dtype, copy=False)
        self._target_points = xp.astype(target_points, dtype, copy=False)
        self._regularization = float(regularization)
        check_landmarks(self._target_points, self._regularization)

    @classmethod
    def from_landmarks(
        cls, source_points: Any, target_points: Any, *, regularization: float = 0.0
    ) -> ThinPlateSpline:
        """The spline with ``T.apply(target_points) ~= source_points``; see the class docstring.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> corners = np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
        >>> tps = gw.ThinPlateSpline.from_landmarks(0.5 * corners, corners)
        >>> tps.apply(np.array([[1.0, 0.0]])).round(12) + 0.0
        array([[0.5, 0. ]])
        """
        return cls(source_points, target_points, regularization=regularization)

    @classmethod
    def from_estimate(
        cls,
        source_points: Any,
        target_points: Any,
        weights: Any = None,
        *,
        regularization: float = 0.0,
    ) -> ThinPlateSpline | FailedEstimation:
        """`from_landmarks` that fails visibly: a falsy `FailedEstimation` for degenerate points.

        The same spline as ``ThinPlateSpline(source_points, target_points,
        regularization=...)``, but fewer than 3 landmarks, mismatched counts,
        non-finite points, coinciding target points (without regularization)
        or target points on one line give a `geowarp.FailedEstimation` saying
        why, not an exception. ``weights`` must be None: the spline
        interpolates every landmark. Like every fit it maps target points to
        source points; scikit-image's and kornia's splines go the other way.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> corners = np.array([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
        >>> bool(gw.ThinPlateSpline.from_estimate(0.5 * corners, corners))
        True
        >>> print(gw.ThinPlateSpline.from_estimate(corners[:2], corners[:2]).message)
        a thin-plate spline fit failed: it needs at least 3 points; got 2
        """
        from ..estimate._fit import fit_tps

        return fit_tps(source_points, target_points, weights, regularization)

    @classmethod
    def control_points(
        cls,
        control_grid: Sequence[int] = (4, 4),
        *,
        like: Any = None,
        dtype: Any = None,
        device: Any = None,
    ) -> Any:
        """Evenly spaced control points over the normalized frame, [-1, 1]^2.

        Parameters
        ----------
        control_grid : (rows, columns)
            At least 2 by 2; the default 4 by 4 gives the STN paper's 16 points.
        like, dtype, device
            The library, dtype and device of the result come from ``like``
            (numpy float64 when omitted); ``dtype`` and ``device`` override them.

        Returns
        -------
        points : array of shape (rows * columns, 2)
            ``(x, y)`` row by row: x varies fastest.

        Examples
        --------
        >>> import geowarp as gw
        >>> gw.ThinPlateSpline.control_points((2, 3))
        array([[-1., -1.],
               [ 0., -1.],
               [ 1., -1.],
               [-1.,  1.],
               [ 0.,  1.],
               [ 1.,  1.]])
        """
        import numpy as np

        rows, columns = check_control_grid(control_grid)
        xs, ys = np.meshgrid(np.linspace(-1.0, 1.0, columns), np.linspace(-1.0, 1.0, rows))
        points = np.stack([xs.ravel(), ys.ravel()], axis=-1)  # a constant: built once in numpy
        xp, dtype, device = creation_namespace(like, dtype, device)
        return xp.asarray(points, dtype=dtype, device=device)

    @classmethod
    def param_count(cls, control_grid: Sequence[int] = (4, 4)) -> int:
        """How many numbers `from_params` takes: two per control point.

        Examples
        --------
        >>> import geowarp as gw
        >>> gw.ThinPlateSpline.param_count((3, 5))
        30
        """
        rows, columns = check_control_grid(control_grid)
        return 2 * rows * columns

    @classmethod
    def from_params(
        cls,
        params: Any,
        *,
        control_grid: Sequence[int] = (4, 4),
        control_points: Any = None,
    ) -> ThinPlateSpline:
        """The spline moving each control point by its offset: identity plus ``params``.

        Parameters
        ----------
        params : array of shape (..., 2 K)
            ``(dx0, dy0, dx1, dy1, ...)``: how far each of the ``K`` control
            points moves in the input; zeros are the identity.
        control_grid : (rows, columns)
            Where the control points sit (`control_points`), unless
            ``control_points`` is given.
        control_points : array of shape (K, 2), optional
            The control points themselves (taken to ``params``' library,
            dtype and device); an STN keeps them as a buffer.

        Returns
        -------
        ThinPlateSpline
            Target points the control points, source points the control
            points plus the offsets; batch ``params.shape[:-1]``.

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> tps = gw.ThinPlateSpline.from_params(np.zeros(8), control_grid=(2, 2))
        >>> tps.apply(np.array([[0.3, -0.2]]))
        array([[ 0.3, -0.2]])
        """
        params = read_variable(params)
        xp = array_namespace(params)
        if control_points is None:
            control_points = cls.control_points(control_grid, like=params)
        else:
            control_points = xp.asarray(
                read_variable(control_points), dtype=params.dtype, device=array_device(params)
            )
        count = control_points.shape[-2]
        if params.ndim < 1 or params.shape[-1] != 2 * count:
            raise GeowarpValueError(
                f"params must have shape (..., {2 * count}) for {count} control points; "
                f"got {tuple(params.shape)}"
            )
        # -1 for the leading axis: a batch unknown while tracing stays unknown
        leading = (-1, *params.shape[1:-1]) if params.ndim > 1 else ()
        offsets = xp.reshape(params, (*leading, count, 2))
        return cls(control_points + offsets, control_points)

    def as_params(self, control_points: Any = None) -> Any:
        """The inverse of `from_params`: the displacement at the control points.

        Parameters
        ----------
        control_points : array of shape (K, 2), optional
            Where to read the displacement; the spline's own target points
            by default (then exactly its source minus target points).

        Examples
        --------
        >>> import numpy as np
        >>> import geowarp as gw
        >>> params = np.arange(8.0) / 10
        >>> tps = gw.ThinPlateSpline.from_params(params, control_grid=(2, 2))
        >>> bool(np.allclose(tps.as_params(), params))
        True
        """
        xp = self.xp
        if control_points is None:
            offsets = self._source_points - self._target_points
        else:
            control_points = self.validate_points(control_points)
            offsets = self.apply(control_points) - control_points
        leading = (-1, *offsets.shape[1:-2]) if offsets.ndim > 2 else ()
        return xp.reshape(offsets, (*leading, 2 * offsets.shape[-2]))

    @property
    def source_points(self) -> Any:
        """Landmarks in the input image, (..., K, 2)."""
        return self._source_points

    @property
    def target_points(self) -> Any:
        """Landmarks in the output image (the kernel centres), (..., K, 2)."""
        return self._target_points

    @property
    def regularization(self) -> float:
        """The smoothing weight."""
        return self._regularization

    @property
    def _reference(self) -> Any:
        return self._source_points

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Broadcast batch dimensions of the two landmark sets."""
        shapes = (self._source_points.shape[:-2], self._target_points.shape[:-2])
        return tuple(broadcast_shapes(*shapes))

    def apply(self, points: Any) -> Any:
        """Map points (..., N, 2) to (..., N, 2)."""
        points = check_points(points, self)
        xp = self.xp
        target = xp.astype(self._target_points, points.dtype, copy=False)
        source = xp.astype(self._source_points, points.dtype, copy=False)
        return call(TPS_APPLY, target, source, points, regularization=self._regularization)

    def _grid(self, height: int, width: int, align_corners: bool) -> Any:
        centres = self._target_points

        def points() -> Any:
            return grid_points(height, width, align_corners, centres)

        if maps_points(centres, height * width):  # numpy, weights too large to keep
            mapped = map_points(
                centres, self._source_points, points(), regularization=self._regularization
            )
        else:
            weights = GRID_WEIGHTS(
                centres,
                points,
                ("grid", height, width, align_corners),
                regularization=self._regularization,
            )
            if weights is None:  # not cacheable: the spline at the pixel centres
                return super()._grid(height, width, align_corners)
            mapped = call(TPS_GRID, weights, self._source_points)
        return self.xp.reshape(mapped, (*mapped.shape[:-2], height, width, 2))

    def inverse(self) -> Transform:
        """Raise `NotInvertibleError`: a thin-plate spline has no closed-form inverse."""
        raise NotInvertibleError(
            "ThinPlateSpline has no closed-form inverse; fit an approximate one with "
            "ThinPlateSpline.from_landmarks(target_points, source_points)"
        )


def check_landmarks(target_points: Any, regularization: float) -> None:
    """Refuse kernel centres whose spline system is singular, where their values are known.

    Raises `GeowarpValueError` naming the points: two target points that
    coincide (unless ``regularization > 0``, which keeps the system
    regular), or all of them on one line (the affine part is then
    undetermined, whatever the regularization). Nearness is judged against
    the points' spread and the dtype's precision (``sqrt(eps)``). Under
    tracing the values are unknown and nothing is checked: a singular system
    then gives a non-finite grid, which reads the padding (docs/reliability.md).
    Centres already found regular are remembered (by value in host memory,
    through the version counter on accelerators), so a spline rebuilt every
    step from the same centres is checked once.
    """
    key = content_key(target_points, array_namespace(target_points))
    if key is not None:
        key = (*key, regularization > 0)
        with _LOCK:
            if key in _REGULAR:
                _REGULAR.move_to_end(key)
                return
    values = known_values(target_points)
    if values is None:
        return
    problem = degenerate_landmarks(values, regularization, "target_points")
    if problem is not None:
        raise GeowarpValueError(f"a thin-plate spline cannot be fitted: {problem}")
    if key is not None:
        with _LOCK:
            _REGULAR[key] = None
            while len(_REGULAR) > 64:
                _REGULAR.popitem(last=False)


_LOCK = threading.Lock()
_REGULAR: OrderedDict[tuple[Any, ...], None] = OrderedDict()


def degenerate_landmarks(points: Any, regularization: float, name: str) -> str | None:
    """Why a spline centred on ``points`` (..., K, 2), a numpy array, is singular; or None.

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.transforms._tps import degenerate_landmarks
    >>> degenerate_landmarks(np.array([[0.0, 0], [1, 0], [0, 1], [0, 1]]), 0.0, "target")
    'target[2] and target[3] coincide'
    >>> degenerate_landmarks(np.array([[0.0, 0], [1, 1], [2, 2]]), 0.0, "target")
    'all target lie on one line'
    """
    nearness = tolerance(points.dtype)
    batch = points.shape[:-2]
    items = np.reshape(points, (-1, *points.shape[-2:])).astype(np.float64)
    for index, item in enumerate(items):
        item_index = tuple(int(i) for i in np.unravel_index(index, batch))
        where = f" (batch item {item_index})" if batch else ""
        if not np.isfinite(item).all():
            row = int(np.flatnonzero(~np.isfinite(item).all(axis=1))[0])
            return f"{name}[{row}] is not finite{where}"
        centred = item - item.mean(axis=0)
        spread = float(np.abs(centred).max())
        if regularization == 0:
            close = coinciding(item, nearness * spread)
            if close is not None:
                return f"{name}[{close[0]}] and {name}[{close[1]}] coincide{where}"
        extent = np.linalg.svd(centred, compute_uv=False)
        if extent[-1] <= nearness * extent[0] or extent[0] == 0:
            return f"all {name} lie on one line{where}"
    return None


@functools.lru_cache
def tolerance(dtype: Any) -> float:
    """Relative nearness under which points coincide or lie on a line: ``sqrt(eps)``.

    ``dtype`` is a numpy dtype; integers are judged as float64. The one rule of
    the spline's checks and of `geowarp.estimate`'s.
    """
    floating = np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float64)
    return float(np.sqrt(np.finfo(floating).eps))


def coinciding(item: Any, distance: float) -> tuple[int, int] | None:
    """The first pair of points (i < j) of ``item`` (N, 2) no farther apart than ``distance``."""
    order = np.argsort(item[:, 0], kind="stable")
    for position, i in enumerate(order):  # sweep along x: neighbours within ``distance``
        for j in order[position + 1 :]:
            if item[j, 0] - item[i, 0] > distance:
                break
            if np.abs(item[j] - item[i]).max() <= distance:
                return (int(min(i, j)), int(max(i, j)))
    return None


def check_control_grid(control_grid: Sequence[int]) -> tuple[int, int]:
    """``control_grid`` as ``(rows, columns)``, each at least 2, or `GeowarpValueError`."""
    rows, columns = check_shape(control_grid, "control_grid")
    if rows < 2 or columns < 2:
        # one row or column of control points is collinear: the spline's system is singular
        raise GeowarpValueError(
            f"control_grid needs at least 2 rows and 2 columns; got {tuple(control_grid)!r}"
        )
    return rows, columns
