"""`warp` on dask arrays: one task per output block, reading only its input region."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import numpy as np

from .._errors import GeowarpTypeError, GeowarpValueError
from ..grid import check_shape
from ..samplers import check_settings
from ..samplers._numpy import sample_window
from ..samplers._sample import _common_batch, _dtypes, _fill
from ..transforms import Affine, Transform
from ..transforms._matrix import MatrixTransform
from ._grid import SplineSolution, block_grid, solve_spline, spline_range
from ._kernel import neighbour_span, pixels, window

#: Output block size per spatial axis when neither ``chunks`` nor the image sets one.
DEFAULT_CHUNK = 1024


def warp(
    image: Any,
    transform: Transform,
    out_shape: Sequence[int] | None = None,
    *,
    chunks: Any = None,
    mode: str = "bilinear",
    padding: str = "zeros",
    align_corners: bool = False,
    fill_value: Any = None,
) -> Any:
    """Warp a dask ``image`` by ``transform``, lazily, block by block.

    Equal to ``geowarp.warp(image.compute(), transform, out_shape, ...)``
    to the last bit, for every family: each output block computes only its
    own part of the sampling grid, with the operations of the whole grid
    (a thin-plate spline sums over its landmarks in one fixed order per
    point, and its small linear system is solved once, here, as
    `geowarp.warp` solves it), and reads only the input region its points
    reach (plus the interpolation neighbours; a spline's block, a region
    bounded from a lattice of its points, not its whole grid).

    Parameters
    ----------
    image : dask array or numpy array of shape (B, C, H, W)
        Channels first. A numpy array is wrapped in one chunk per item and channel.
    transform : Transform
        A geowarp transform of numpy arrays (other libraries' arrays are
        converted with ``numpy.asarray``), batch shape ``()`` or ``(B,)``.
    out_shape : (H_out, W_out), optional
        Output size; the input's ``(H, W)`` when omitted.
    chunks : int, (int, int) or dask chunks for (H_out, W_out), optional
        Output blocks; the image's spatial chunks when omitted (when shapes
        match, else its chunk size), 1024 x 1024 for a numpy image.
    mode, padding, align_corners, fill_value
        As in `geowarp.sample`.

    Returns
    -------
    out : dask array of shape (B, C, H_out, W_out)
        Chunked as ``chunks`` over (H_out, W_out) and as the image over batch
        and channels; the dtype of `geowarp.warp`'s result.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> import geowarp as gw
    >>> import geowarp.dask
    >>> image = da.from_array(np.arange(16.0).reshape(1, 1, 4, 4), chunks=(1, 1, 2, 2))
    >>> flip = gw.Affine(np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    >>> out = geowarp.dask.warp(image, flip)
    >>> out.chunks[2:]
    ((2, 2), (2, 2))
    >>> out.compute()[0, 0, 0]
    array([3., 2., 1., 0.])
    """
    image = _as_dask(image)
    transform = _numpy_transform(transform)
    mode, padding, align_corners = check_settings(mode, padding, align_corners, fill_value)
    if len(transform.batch_shape) > 1:
        raise GeowarpValueError(
            f"transform batch shape must be () or (B,); got {transform.batch_shape}"
        )
    in_shape = (int(image.shape[2]), int(image.shape[3]))
    shape = in_shape if out_shape is None else check_shape(out_shape, "out_shape")
    batch = _common_batch(image.shape[0], transform.batch_shape[0] if transform.batch_shape else 1)
    solved = solve_spline(transform, shape)  # here, once: every block reads the same solution
    probe = block_grid(transform, shape, slice(0, 1), slice(0, 1), align_corners, solved)
    out_dtype, real, grid_dtype = _dtypes(image.dtype, probe.dtype, mode, np)
    ring = _ring(fill_value, padding, image, real)
    plan = _Plan(transform, in_shape, shape, (mode, padding, align_corners), real, grid_dtype)
    plan.solved = solved
    plan.out_dtype = out_dtype
    spatial = _out_chunks(chunks, image, shape, in_shape, out_dtype)
    batch_chunks = image.chunks[0] if image.shape[0] == batch else (batch,)
    blocks = _blocks(image, plan, batch, batch_chunks, spatial, ring)
    return (
        da.block(blocks) if blocks else da.empty((batch, image.shape[1], *shape), dtype=out_dtype)
    )


class _Plan:
    """What every block task needs besides its slices: small, sent once per task."""

    def __init__(
        self,
        transform: Transform,
        in_shape: tuple[int, int],
        out_shape: tuple[int, int],
        settings: tuple[str, str, bool],
        real: Any,
        grid_dtype: Any,
    ) -> None:
        self.transform, self.in_shape, self.out_shape = transform, in_shape, out_shape
        self.mode, self.padding, self.align_corners = settings
        # `geowarp.sample`'s dtypes: the image's working one, the grid's, the output's
        self.real, self.grid_dtype, self.out_dtype = real, grid_dtype, real
        self.solved: SplineSolution | None = None  # a spline's system, solved once

    def grid(self, items: slice, rows: Any, cols: Any) -> Any:
        """The sampling grid (B_block or 1, h, w, 2) of output rows/cols for batch ``items``."""
        transform = _items(self.transform, items)
        grid = block_grid(transform, self.out_shape, rows, cols, self.align_corners, self.solved)
        grid = np.asarray(grid, dtype=self.grid_dtype)
        if grid.ndim == 3:
            return grid[None]
        if self.transform.batch_shape and not isinstance(transform, MatrixTransform):
            return grid[items]  # the whole batch was mapped: keep this block's items
        return grid

    def pixels(self, items: slice, rows: Any, cols: Any) -> tuple[Any, Any]:
        """Pixel coordinates (B_block or 1, h, w) of output rows/cols for batch ``items``."""
        grid = self.grid(items, rows, cols)
        return pixels(grid, self.in_shape, self.padding, self.align_corners)

    def span(self, items: slice, rows: Any, cols: Any) -> tuple[Any, Any]:
        """Padded-copy rows and columns (inclusive) the block's points read."""
        separable = type(self.transform)._grid is MatrixTransform._grid
        if isinstance(self.transform, Affine) and separable and self.padding != "reflection":
            # Every step from the axes to clamped pixels is monotone, rounding included,
            # in x and in y: the extremes are at the block's corners.
            rows = np.array([rows.start, rows.stop - 1])
            cols = np.array([cols.start, cols.stop - 1])
        elif self.solved is not None and self.padding != "reflection":
            # a spline: its range over the block from a lattice of points, not its whole grid
            bounds = spline_range(
                self.transform, self.out_shape, rows, cols, self.align_corners, self.solved
            )
            if bounds is not None:
                corners = bounds.astype(self.grid_dtype)
                x, y = pixels(corners, self.in_shape, self.padding, self.align_corners)
                # one more pixel each way for the grid's rounding; the ring is read beyond
                (top, bottom), (left, right) = (neighbour_span(c, self.mode) for c in (y, x))
                return (max(top - 1, -1), bottom + 1), (max(left - 1, -1), right + 1)
        x, y = self.pixels(items, rows, cols)
        return neighbour_span(y, self.mode), neighbour_span(x, self.mode)


def _block(
    plan: _Plan, items: slice, rows: slice, cols: slice, span: Any, region: Any, ring: Any
) -> Any:
    """One output block (B_block, C_block, h, w) from its input ``region`` (or None)."""
    count = items.stop - items.start
    (top, _), (left, _) = span
    origin = (max(top, 0), max(left, 0))
    values = window(
        None if region is None else np.asarray(region, dtype=plan.real), origin, span, ring
    )
    # numpy's sampler kernels on the window: pixels, blend and all, chunk by chunk. The
    # grid has the working dtype, but for nearest on an integer image, which only gathers.
    grid = plan.grid(items, rows, cols)
    grid = np.broadcast_to(grid, (count, *grid.shape[1:]))  # one transform for every item
    out = sample_window(
        values,
        grid,
        (top, left),
        plan.in_shape,
        mode=plan.mode,
        padding=plan.padding,
        align_corners=plan.align_corners,
    )
    return out.astype(plan.out_dtype, copy=False)


def _blocks(
    image: Any, plan: _Plan, batch: int, batch_chunks: Any, spatial: Any, ring: Any
) -> list[Any]:
    height, width = plan.in_shape
    channel_chunks = image.chunks[1]
    keys = list(_slice_product(batch_chunks, spatial[0], spatial[1]))
    spans = dask.compute(*[dask.delayed(plan.span)(b, r, c) for b, r, c in keys])
    by_key = {_key(*key): span for key, span in zip(keys, spans, strict=True)}
    shared = image.shape[0] != batch  # one image item for a batch of transforms
    nested = []
    for items in _slices(batch_chunks):
        per_channel = []
        for channels in _slices(channel_chunks):
            per_row = []
            for rows in _slices(spatial[0]):
                per_col = []
                for cols in _slices(spatial[1]):
                    span = by_key[_key(items, rows, cols)]
                    (top, bottom), (left, right) = span
                    read_rows = slice(max(top, 0), min(bottom, height - 1) + 1)
                    read_cols = slice(max(left, 0), min(right, width - 1) + 1)
                    region = None
                    if read_rows.start < read_rows.stop and read_cols.start < read_cols.stop:
                        region = image[
                            slice(None) if shared else items, channels, read_rows, read_cols
                        ]
                    task = dask.delayed(_block, pure=True)(
                        plan, items, rows, cols, span, region, ring[channels]
                    )
                    shape = (
                        items.stop - items.start,
                        channels.stop - channels.start,
                        rows.stop - rows.start,
                        cols.stop - cols.start,
                    )
                    per_col.append(da.from_delayed(task, shape, dtype=plan.out_dtype))
                per_row.append(per_col)
            per_channel.append(per_row)
        nested.append(per_channel)
    return nested


def _key(*slices: slice) -> tuple[int, ...]:
    return tuple(part.start for part in slices)  # slices are hashable from Python 3.12 only


def _slice_product(*chunks: Any) -> Any:
    """Every combination of the slices of ``chunks`` (one tuple of sizes per axis)."""
    return itertools.product(*(_slices(sizes) for sizes in chunks))


def _slices(sizes: Sequence[int]) -> list[slice]:
    starts = np.cumsum((0, *sizes))
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(starts) if b > a]


def _items(transform: Transform, items: slice) -> Transform:
    # a batch of matrices: just this block's items (others map the whole batch)
    if transform.batch_shape and isinstance(transform, MatrixTransform):
        return type(transform)(transform.matrix[items])
    return transform


def _as_dask(image: Any) -> Any:
    if isinstance(image, np.ndarray):
        image = da.from_array(image, chunks=(1, 1, *image.shape[2:]) if image.ndim == 4 else -1)
    if not isinstance(image, da.Array):
        raise GeowarpTypeError(
            f"image must be a dask array (or a numpy array); got {type(image).__name__}"
        )
    if image.ndim != 4 or image.shape[2] == 0 or image.shape[3] == 0:
        raise GeowarpValueError(
            f"image must have shape (B, C, H, W) with H, W > 0; got shape {tuple(image.shape)}"
        )
    if any(np.isnan(size) for size in image.shape):
        raise GeowarpValueError("image must have a known shape; call image.compute_chunk_sizes()")
    return image


def _numpy_transform(transform: Any) -> Transform:
    if not isinstance(transform, Transform):
        raise GeowarpTypeError(
            f"transform must be a geowarp Transform; got {type(transform).__name__}"
        )
    leaves, structure = transform.flatten()
    if all(isinstance(leaf, np.ndarray) for leaf in leaves):
        return transform
    try:
        converted = [np.asarray(leaf) for leaf in leaves]
    except Exception as error:  # a tensor on an accelerator, or one that needs grad
        raise GeowarpTypeError(
            "geowarp.dask.warp needs a transform of numpy arrays; converting "
            f"{type(transform).__name__}'s arrays with numpy.asarray failed ({error}); "
            "move them to the host first"
        ) from None
    return Transform.unflatten(structure, converted)


def _ring(fill_value: Any, padding: str, image: Any, real: Any) -> Any:
    """The padding ring's value per channel (C,), in the working dtype, as the samplers'."""
    channels = int(image.shape[1])
    if padding in ("border", "reflection"):
        return np.zeros((channels,), dtype=real)
    value = fill_value
    if fill_value is None:
        value = 0.0
    elif not isinstance(fill_value, int | float):
        value = np.asarray(fill_value)  # a sequence joins numpy, as in `geowarp.sample`
    like = np.empty((1, channels, 1, 1), dtype=real)  # checks an integer output's fill
    return np.array(_fill(value, channels, like, np))


def _out_chunks(
    chunks: Any, image: Any, shape: tuple[int, int], in_shape: tuple[int, int], dtype: Any
) -> tuple[tuple[int, ...], ...]:
    if chunks is None:
        if image.numblocks[2] * image.numblocks[3] == 1:  # one spatial block: no advice
            chunks = (DEFAULT_CHUNK, DEFAULT_CHUNK)
        elif shape == in_shape:
            chunks = tuple(image.chunks[2:])
        else:
            chunks = tuple(image.chunksize[2:])
    return tuple(da.core.normalize_chunks(chunks, shape=shape, dtype=dtype))
