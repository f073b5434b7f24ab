"""What registration needs of each transform family: its parameter vector, the
Jacobian of the warped image w.r.t. it, and how far a parameter step moves points.

A sampling point depends on the parameters through the family's own map, so
the image Jacobian is ``dI/dx * dx/dp + dI/dy * dy/dp`` with the point
derivatives written out once per family: analytic for the matrix families,
and for a thin-plate spline the interpolation weights themselves (its grid is
linear in the control points' offsets). Image gradients come in per unit of
the normalized frame, so parameters keep their meaning at every level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._errors import GeowarpTypeError
from .._namespace import device as array_device
from .._namespace import known_values
from ..transforms import Affine, Projective, ThinPlateSpline, Transform


@dataclass(frozen=True)
class Geometry:
    """One level's frames: the fixed image's pixel centres and the moving image's scale."""

    shape: tuple[int, int]  # fixed (H, W) at this level
    xs: Any  # (W,) normalized x of the fixed pixel centres
    ys: Any  # (H, 1) normalized y
    scale: tuple[float, float]  # moving-image pixels per normalized unit along (x, y)
    align_corners: bool


class Model(Protocol):
    """A family as registration sees it (`AffineModel`, `ProjectiveModel`, `SplineModel`)."""

    name: str

    @property
    def count(self) -> int: ...
    def transform(self, params: Any) -> Transform: ...
    def columns(self, gx: Any, gy: Any, grid: Any, params: Any, level: Geometry, xp: Any) -> Any:
        """The image Jacobian's P columns, one per parameter: (B, C, P, N)."""
        ...

    def displacement(self, params: Any, step: Any, level: Geometry, xp: Any) -> Any: ...
    def from_transform(self, initial: Transform, xp: Any) -> Any: ...


# the affine columns' factors u = (x, y, 1) as (power of y, power of x); a moment
# y^i x^j sits at 3 i + j of `AffineModel.products`' nine
_FACTORS = ((0, 1), (1, 0), (0, 0))
_SINGLE_MOMENTS = [3 * i + j for i, j in _FACTORS]
_PAIR_MOMENTS = [3 * (a[0] + b[0]) + a[1] + b[1] for a in _FACTORS for b in _FACTORS]


def _flat_columns(columns: list[Any], xp: Any) -> Any:
    # P arrays (B, C, H, W) -> (B, C, P, H * W): each column one contiguous run
    stacked = xp.stack(columns, axis=-3)
    batch, channels, count, height, width = stacked.shape
    return xp.reshape(stacked, (batch, channels, count, height * width))


@dataclass(frozen=True)
class AffineModel:
    """Affine: ``x' = (1 + p0) x + p1 y + p2``, ``y' = p3 x + (1 + p4) y + p5``."""

    name = "affine"
    count = 6

    def transform(self, params: Any) -> Transform:
        return Affine.from_params(params)

    def columns(self, gx: Any, gy: Any, grid: Any, params: Any, level: Geometry, xp: Any) -> Any:
        x, y = level.xs, level.ys
        return _flat_columns([gx * x, gx * y, gx, gy * x, gy * y, gy], xp)

    def products(
        self, gx: Any, gy: Any, vectors: list[Any], level: Geometry, xp: Any
    ) -> tuple[Any, list[Any]]:
        """``A^T A`` (B, C, 6, 6) and ``A^T v`` (B, C, 6) from image moments, without ``A``.

        Every entry is a sum over pixels of an image (``gx gx``, ``gx gy``,
        ``gy gy``, ``gx v``, ``gy v``) times a monomial ``y^i x^j`` (i + j <= 2);
        as ``x`` varies along the width only and ``y`` along the height only,
        the nine moments of an image are two small matrix products
        ``Y (image X)``. Equal to ``columns``' products up to float rounding.
        """
        xs, ys = level.xs, level.ys[:, 0]
        xs_squared = xs * xs
        along_y = xp.stack([xp.ones_like(ys), ys, ys * ys], axis=0)  # (3, H)
        batch, channels, height, width = gx.shape

        def moments(image: Any) -> Any:  # (B, C, 9): sum of image * y^i x^j at 3 i + j
            # rows first by reductions (a matrix product with 3 columns is slow on
            # CPUs), by whole arrays, not columns sliced per call (a slice is an op)
            sums = [xp.sum(image, axis=-1), xp.sum(image * xs, axis=-1)]
            sums.append(xp.sum(image * xs_squared, axis=-1))
            rows = xp.stack(sums, axis=-1)
            return xp.reshape(along_y @ rows, (batch, channels, 9))

        device = array_device(gx)
        pairs = xp.asarray(_PAIR_MOMENTS, device=device)
        single = xp.asarray(_SINGLE_MOMENTS, device=device)

        def block(image: Any) -> Any:  # (B, C, 3, 3): sum of image * u_a * u_b
            picked = xp.take(moments(image), pairs, axis=-1)
            return xp.reshape(picked, (batch, channels, 3, 3))

        xx, xy, yy = block(gx * gx), block(gx * gy), block(gy * gy)
        normal = xp.concat([xp.concat([xx, xy], axis=-1), xp.concat([xy, yy], axis=-1)], axis=-2)
        out = []
        for vector in vectors:
            image = (
                None if vector is None else xp.reshape(vector, (*vector.shape[:2], height, width))
            )
            parts = [g if image is None else g * image for g in (gx, gy)]
            out.append(xp.concat([xp.take(moments(p), single, axis=-1) for p in parts], axis=-1))
        return normal, out

    def displacement(self, params: Any, step: Any, level: Geometry, xp: Any) -> Any:
        # the largest |a x + b y + c| over the frame [-1, 1]^2 is |a| + |b| + |c|
        size = xp.abs(step)
        along_x = xp.sum(size[..., :3], axis=-1) * level.scale[0]
        along_y = xp.sum(size[..., 3:], axis=-1) * level.scale[1]
        return xp.maximum(along_x, along_y)

    def from_transform(self, initial: Transform, xp: Any) -> Any:
        if not isinstance(initial, Affine):
            raise GeowarpTypeError(
                f"initial must be an Affine for transform='affine'; got {type(initial).__name__}"
            )
        return initial.as_params()


@dataclass(frozen=True)
class ProjectiveModel:
    """Homography ``I + [[p0, p1, p2], [p3, p4, p5], [p6, p7, 0]]``."""

    name = "projective"
    count = 8

    def transform(self, params: Any) -> Transform:
        return Projective.from_params(params)

    def columns(self, gx: Any, gy: Any, grid: Any, params: Any, level: Geometry, xp: Any) -> Any:
        x, y = level.xs, level.ys
        w = params[:, 6, None, None, None] * x + params[:, 7, None, None, None] * y + 1.0
        mapped_x, mapped_y = grid[:, None, :, :, 0], grid[:, None, :, :, 1]
        # points beyond the horizon map to NaN; they are excluded, but 0 * NaN is not 0
        beyond = xp.isnan(mapped_x)
        w = xp.where(beyond, 1.0, w)
        a, b = gx / w, gy / w
        s = -(a * xp.where(beyond, 0.0, mapped_x) + b * xp.where(beyond, 0.0, mapped_y))
        return _flat_columns([a * x, a * y, a, b * x, b * y, b, s * x, s * y], xp)

    def displacement(self, params: Any, step: Any, level: Geometry, xp: Any) -> Any:
        # how far the frame's corners move: they bound a homography near the identity
        corners = xp.asarray(
            [[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]],
            dtype=params.dtype,
            device=array_device(params),
        )
        before = Projective.from_params(params).apply(corners)
        after = Projective.from_params(params + step).apply(corners)
        moved = xp.abs(after - before)
        moved = xp.maximum(moved[..., 0] * level.scale[0], moved[..., 1] * level.scale[1])
        return xp.max(xp.where(xp.isnan(moved), math.inf, moved), axis=-1)

    def from_transform(self, initial: Transform, xp: Any) -> Any:
        if isinstance(initial, Affine):
            initial = Projective(initial.matrix3x3())
        if not isinstance(initial, Projective):
            raise GeowarpTypeError(
                "initial must be a Projective or an Affine for transform='projective'; got "
                f"{type(initial).__name__}"
            )
        return initial.as_params()


@dataclass(unsafe_hash=True)
class SplineModel:
    """Thin-plate spline on a ``control_grid``: each control point's offset (dx, dy).

    Equal and hashed by its control grid (a compiled level step is kept per model).
    """

    control_grid: tuple[int, int]
    _weights: dict[tuple[Any, ...], Any] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    name = "tps"

    @property
    def count(self) -> int:
        return int(ThinPlateSpline.param_count(self.control_grid))

    def transform(self, params: Any) -> Transform:
        return ThinPlateSpline.from_params(params, control_grid=self.control_grid)

    def _grid_weights(self, level: Geometry, like: Any, xp: Any) -> Any:
        """(K, N): how each fixed pixel's sampling x moves with each control point's dx.

        Read off the family's own grids (the grid is linear in the offsets), so
        they are exactly the weights `geowarp.warp` uses.
        """
        key = (level.shape, like.dtype, array_device(like))
        if key not in self._weights:
            count = self.count // 2
            rows = xp.arange(count, device=array_device(like))
            unit = xp.astype(
                xp.arange(self.count, device=array_device(like))[None, :] == 2 * rows[:, None],
                like.dtype,
            )
            grids = self.transform(xp.concat([unit, xp.zeros_like(unit[:1])], axis=0))
            moved = grids.sampling_grid(level.shape, align_corners=level.align_corners)
            weights = xp.reshape(moved[:-1, ..., 0] - moved[-1:, ..., 0], (count, -1))
            if known_values(like) is None:  # being compiled: a stand-in, not to keep
                return weights
            self._weights[key] = weights
        return self._weights[key]

    def columns(self, gx: Any, gy: Any, grid: Any, params: Any, level: Geometry, xp: Any) -> Any:
        weights = self._grid_weights(level, params, xp)
        batch, channels, height, width = gx.shape
        flat = (batch, channels, 1, height * width)
        along_x = xp.reshape(gx, flat) * weights
        along_y = xp.reshape(gy, flat) * weights
        pairs = xp.stack([along_x, along_y], axis=-2)  # (B, C, K, 2, N): dx0, dy0, dx1, ...
        return xp.reshape(pairs, (batch, channels, self.count, height * width))

    def displacement(self, params: Any, step: Any, level: Geometry, xp: Any) -> Any:
        offsets = xp.abs(xp.reshape(step, (step.shape[0], -1, 2)))
        moved = xp.maximum(offsets[..., 0] * level.scale[0], offsets[..., 1] * level.scale[1])
        return xp.max(moved, axis=-1)

    def from_transform(self, initial: Transform, xp: Any) -> Any:
        # any transform: where it takes the control points
        points = ThinPlateSpline.control_points(self.control_grid, like=initial._reference)
        offsets = initial.apply(points) - points
        return xp.reshape(offsets, (*offsets.shape[:-2], self.count))
