"""NumPy's sampler kernels: the portable samplers' arithmetic, laid out for NumPy.

NumPy has no autodiff and no registered backend, so `geowarp.sample` takes
these kernels from `KERNELS` the way it takes a backend's
``Backend.samplers`` (``native=False`` forces the portable code). Each value
is computed by the portable code's operations, on the same dtype and in the
same order, so results are identical (pinned by ``tests/test_kernels.py``);
what changes is how NumPy is asked to do it:

* a planar padded copy (B, C, H + 3, W + 3) instead of a channels-last one:
  the gathers are one-dimensional ``np.take`` calls (a (N, C) row gather is
  several times slower per value), the blend runs on contiguous rows, and the
  output is written channels first, with no transposes either way;
* one index array for every channel and neighbour: channel ``c``'s neighbour
  ``(dx, dy)`` is row ``index`` of a view of the flat copy that starts
  ``c * plane + dy * W_padded + dx`` values later;
* chunks of at most `CHUNK` points, computed in one set of buffers with
  ``out=``: the temporaries stay in cache, and no chunk allocates (a fresh
  buffer of 128 KiB or more is a fresh mapping from the C allocator, whose
  page faults cost as much as the arithmetic);
* the clamp into ``[-1, size]`` as one ``clip``; a NaN coordinate, which
  ``source_pixels`` reads at ``-1`` (the padding ring), is found by a ``min``
  and only then fixed (an affine warp's own grid, which cannot hold NaN, is
  not searched);
* ufunc buffers no longer than a row (`ROW_BUFFER`), so that a row broadcast
  to every line is added in place rather than copied through buffers;
* ``np.take(..., mode="wrap")`` on indices that are always in range (the
  same values as the default mode, without its slower bounds checks) and
  indices cast through int32 where they fit;
* one thread: spreading the chunks over two threads (numpy releases the GIL
  in its gathers and arithmetic) made a 1024x1024 warp slower on two idle
  cores (8.4 against 6.0 ms), the chunks being bound by memory, not by
  arithmetic.

Where numba is installed, `geowarp.samplers._compiled` compiles the same
arithmetic point by point, in loops that need none of these tricks and that
do spread a large warp's rows over the cores; the chunks serve until those
loops are ready, and wherever they do not apply (reflection padding, integer
images).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from . import _compiled
from ._coordinates import COORDINATE_LIMIT, INT32_ROWS, source_pixels

#: Points per chunk: the buffers of a chunk fit a core's L2 cache.
CHUNK = 2**15
#: Integers float32 holds exactly (0 to 2**24): index arithmetic beyond it is done wider.
FLOAT32_EXACT = 2**24
#: numpy's ufuncs copy an operand broadcast along rows (a grid row added to every
#: line, an offset to every item) through buffers of ``np.getbufsize()`` values
#: (8192); with buffers no longer than a row they work on the rows in place, about
#: 3x faster (numpy 2.4). Chunks whose rows are this long or longer use it.
ROW_BUFFER = 256


def bilinear(image: Any, grid: Any, fill: Any, *, padding: str, align_corners: bool) -> Any:
    """`geowarp.samplers.BILINEAR`'s forward for numpy arrays of one dtype."""
    return _sample(image, grid, fill, padding, align_corners, "bilinear")


def nearest(image: Any, grid: Any, fill: Any, *, padding: str, align_corners: bool) -> Any:
    """`geowarp.samplers.NEAREST`'s forward for numpy arrays of one dtype."""
    return _sample(image, grid, fill, padding, align_corners, "nearest")


KERNELS: dict[str, Callable[..., Any]] = {"bilinear_sample": bilinear, "nearest_sample": nearest}
"""The kernels by core op name, as in `geowarp.backends.Backend` ``samplers``."""

_CHUNKS: dict[str, Callable[..., None]] = {}  # filled below, by mode
_AUTO = "auto"  # `_loops`' default: numba's compiled loops where ready and they apply


def warp_matrix(
    image: Any,
    rows: Any,
    xs: Any,
    ys: Any,
    fill: Any,
    *,
    mode: str,
    padding: str,
    align_corners: bool,
    _loops: Any = _AUTO,
) -> Any:
    """`geowarp.warp` by a matrix map, its sampling grid built chunk by chunk, never whole.

    ``rows`` (B or none, R, 3) are the rows the map uses (R = 2 affine, 3
    projective) and ``xs`` (W_out,), ``ys`` (H_out,) the output's pixel
    centres, all of the image's dtype. Each chunk's grid is the separable
    grid's own arithmetic (`geowarp.transforms._matrix_ops`: the same row
    products, one add per point, and for a homography the same division by
    ``w``, NaN where the point is not in front), written into the kernel's
    buffers: the values are the ones ``warp`` samples through a grid, bit
    for bit, without the grid's memory pass and page faults. numba's compiled
    loops (`geowarp.samplers._compiled`) compute the same values point by
    point where they are ready and apply (``_loops``: the loops' module, or
    None for numpy's chunks).
    """
    batch, channels = image.shape[:2]
    out_h, out_w = ys.shape[0], xs.shape[0]
    out = np.empty((batch, channels, out_h * out_w), dtype=image.dtype)
    if out.size == 0:
        return np.reshape(out, (batch, channels, out_h, out_w))
    rows = rows if rows.ndim == 3 else rows[None, ...]
    # `_planes`: (B or 1, R, W) and (B or 1, R, H), the same products
    along_x = rows[..., :, 0:1] * xs + rows[..., :, 2:3]
    along_y = rows[..., :, 1:2] * ys
    padded = _padded_planar(image, fill)
    # An affine grid is sums of finite plane values: it may overflow to inf, never
    # become NaN, so the chunks need not look for NaN.
    nan_free = rows.shape[-2] == 2 and bool(np.isfinite(along_x).all() & np.isfinite(along_y).all())
    layout = _Layout(padded.shape, padding, align_corners, image.dtype, nan_free=nan_free)
    flat = np.reshape(padded, (-1,))
    points = out_h * out_w
    loops = _loops_for(padding, image.dtype, image.dtype, _loops, out.size)
    if loops is not None:
        # each homography's sign of w in front, as `_matrix_points` reads it (affine: unused)
        centres = rows[:, 2, 2] if rows.shape[-2] == 3 else np.ones(rows.shape[0])
        signs = np.where(centres < 0, -1.0, 1.0).astype(image.dtype)
        arguments = (flat, along_x, along_y, signs, *layout.loop_inputs(mode, batch), out)
        _compiled.run_rows(loops.matrix_rows, arguments, batch * out_h, batch * points)
        return np.reshape(out, (batch, channels, out_h, out_w))
    items = max(1, CHUNK // points)
    lines = out_h if items > 1 else max(1, min(out_h, CHUNK // out_w))
    size = min(batch, items) * lines * out_w
    chunk = _CHUNKS[mode]
    offsets = layout.item_offsets(0, batch)

    errors = {"over": "ignore", "divide": "ignore", "invalid": "ignore"}
    with _numpy_state(errors, ROW_BUFFER if out_w >= ROW_BUFFER else None):
        work = _Workspace(size, image.dtype, layout.index_float)
        for first in range(0, batch, items):
            for top in range(0, out_h, lines):
                stop, bottom = min(batch, first + items), min(out_h, top + lines)
                shared = slice(0, 1) if along_x.shape[0] == 1 else slice(first, stop)
                buffers = work.shaped((stop - first, (bottom - top) * out_w))
                planes_y = along_y[shared, :, top:bottom]
                _matrix_points(along_x[shared], planes_y, rows[shared], buffers)
                into = out[first:stop, :, top * out_w : bottom * out_w]
                chunk(flat, buffers.x, buffers.y, offsets[first:stop], layout, into, buffers)
    return np.reshape(out, (batch, channels, out_h, out_w))


def _matrix_points(along_x: Any, along_y: Any, rows: Any, buffers: _Buffers) -> None:
    """One chunk's grid x and y into ``buffers.x``, ``buffers.y`` (see `warp_matrix`)."""
    items, lines, width = buffers.x.shape[0], along_y.shape[-1], along_x.shape[-1]
    shape = (items, lines, width)

    def plane(row: int, into: Any) -> Any:
        np.add(along_y[:, row, :, None], along_x[:, row, None, :], out=into.reshape(shape))
        return into

    x, y = plane(0, buffers.x), plane(1, buffers.y)
    if rows.shape[-2] == 2:
        return
    # `_projected_planes`: w where ``w * sign > 0`` (sign of the matrix's centre), else NaN
    w = plane(2, buffers.first)
    sign = np.where(rows[:, 2:3, 2:3] < 0, -1.0, 1.0).astype(w.dtype)  # (items or 1, 1, 1)
    facing = np.reshape(buffers.x0, shape)
    np.multiply(np.reshape(w, shape), sign, out=facing)
    behind = np.less_equal(buffers.x0, 0, out=buffers.mask)  # NaN w stays NaN
    np.copyto(w, np.nan, where=behind)
    x /= w
    y /= w


def sample_window(
    values: Any,
    grid: Any,
    corner: tuple[int, int],
    in_shape: tuple[int, int],
    *,
    mode: str,
    padding: str,
    align_corners: bool,
) -> Any:
    """`geowarp.sample`'s values at ``grid`` (B, H, W, 2) from a window of its padded copy.

    ``values`` (B or 1, C, h, w) are the samplers' padded copy of an image of
    ``in_shape`` (its rows and columns from pixel ``corner`` = (row, column)
    on, the ring's value where they reach past the image), holding every
    neighbour the points read; ``grid`` has the values' dtype (a float one
    for ``"nearest"``, which only gathers). The kernels' own chunks, or their
    compiled loops on the calling thread, bit for bit the whole image's values
    (`geowarp.dask` samples its blocks with it).
    """
    shared = values.shape[0] != grid.shape[0]
    window = (corner, in_shape)
    layout = _Layout(values.shape, padding, align_corners, grid.dtype, window=window, shared=shared)
    values = np.ascontiguousarray(values)
    return _sample_copy(values, grid, layout, mode, _AUTO, threads=False)


def _sample(image: Any, grid: Any, fill: Any, padding: str, align_corners: bool, mode: str) -> Any:
    if 0 in (*image.shape[:2], *grid.shape[1:3]):  # no output value: nothing to pad
        return np.empty((*image.shape[:2], *grid.shape[1:3]), dtype=image.dtype)
    padded = _padded_planar(image, fill)
    layout = _Layout(padded.shape, padding, align_corners, grid.dtype)
    return _sample_copy(padded, grid, layout, mode, _AUTO)


def _sample_copy(
    padded: Any, grid: Any, layout: _Layout, mode: str, loops: Any, *, threads: bool = True
) -> Any:
    """The points of ``grid`` read from ``padded``, the copy ``layout`` describes.

    ``loops``: numba's compiled loops' module, None for numpy's chunks, or
    `_AUTO`; ``threads``: whether the loops may spread rows over the cores.
    """
    batch, channels = grid.shape[0], padded.shape[1]
    _, out_h, out_w, _ = grid.shape
    points = out_h * out_w
    out = np.empty((batch, channels, points), dtype=padded.dtype)
    if out.size == 0:
        return np.reshape(out, (batch, channels, out_h, out_w))
    flat = np.reshape(padded, (-1,))
    loops = _loops_for(layout.padding, padded.dtype, grid.dtype, loops, out.size)
    if loops is not None:
        planes = (grid[..., 0], grid[..., 1])  # views: no copy of a strided grid
        arguments = (flat, *planes, *layout.loop_inputs(mode, batch), out)
        work = batch * points if threads else 0
        _compiled.run_rows(loops.grid_rows, arguments, batch * out_h, work)
        return np.reshape(out, (batch, channels, out_h, out_w))
    chunk = _CHUNKS[mode]
    grid_x = np.reshape(grid[..., 0], (batch, points))  # views for the usual layouts
    grid_y = np.reshape(grid[..., 1], (batch, points))
    items = max(1, CHUNK // points)
    span = min(points, CHUNK)
    size = min(batch, items) * span

    offsets = layout.item_offsets(0, batch)

    # a huge coordinate overflows to inf, then clamps
    with _numpy_state({"over": "ignore"}, ROW_BUFFER if span >= ROW_BUFFER else None):
        work = _Workspace(size, grid.dtype, layout.index_float)
        for first in range(0, batch, items):
            for start in range(0, points, span):
                where = (slice(first, first + items), slice(start, start + span))
                part_x = grid_x[where]
                buffers = work.shaped(part_x.shape)
                into = out[first : first + items, :, start : start + span]
                chunk(flat, part_x, grid_y[where], offsets[where[0]], layout, into, buffers)
    return np.reshape(out, (batch, channels, out_h, out_w))


@contextlib.contextmanager
def _numpy_state(errors: dict[str, Any], bufsize: int | None) -> Iterator[None]:
    """``np.errstate(**errors)`` and, where given, ``np.setbufsize(bufsize)`` until it ends."""
    with np.errstate(**errors):
        if bufsize is not None:
            np.setbufsize(bufsize)  # numpy's errstate restores the buffer size
        yield


class _Workspace:
    """A chunk's buffers, allocated once per call, viewed in each chunk's shape."""

    def __init__(self, size: int, dtype: Any, index_float: Any) -> None:
        self._floats = np.empty((7, size), dtype=dtype)  # x, y, x0, y0 and three gathers
        self._wide = None if index_float == dtype else np.empty((2, size), dtype=index_float)
        self._index = np.empty(size, dtype=np.intp)
        self._narrow = np.empty(size, dtype=np.int32)
        self._mask = np.empty(size, dtype=np.bool_)
        self._views: dict[tuple[int, ...], _Buffers] = {}  # every chunk but the last: one shape

    def shaped(self, shape: tuple[int, ...]) -> _Buffers:
        """Views of the buffers of a chunk of ``shape``."""
        views = self._views.get(shape)
        if views is None:
            views = self._views[shape] = self._views_of(shape)
        return views

    def _views_of(self, shape: tuple[int, ...]) -> _Buffers:
        count = shape[0] * shape[1]
        x, y, x0, y0, first, second, third = (np.reshape(f[:count], shape) for f in self._floats)
        wide = None if self._wide is None else [np.reshape(r[:count], shape) for r in self._wide]
        index = np.reshape(self._index[:count], shape)
        narrow = np.reshape(self._narrow[:count], shape)
        mask = np.reshape(self._mask[:count], shape)
        return _Buffers(x, y, x0, y0, first, second, third, wide, index, narrow, mask)


class _Buffers(NamedTuple):
    x: Any
    y: Any
    x0: Any
    y0: Any
    first: Any
    second: Any
    third: Any
    wide: Any  # (x0, y0) in float64 for planes beyond float32's exact integers, else None
    index: Any
    narrow: Any
    mask: Any


def _padded_planar(image: Any, fill: Any) -> Any:
    """``padded[b, c, y + 1, x + 1] == image[b, c, y, x]``; the ring (1 before, 2 after) is fill."""
    batch, channels, height, width = image.shape
    padded = np.empty((batch, channels, height + 3, width + 3), dtype=image.dtype)
    ring = np.reshape(np.asarray(fill, dtype=image.dtype), (channels, 1, 1))
    padded[:, :, :1, :] = ring
    padded[:, :, height + 1 :, :] = ring
    padded[:, :, 1 : height + 1, :1] = ring
    padded[:, :, 1 : height + 1, width + 1 :] = ring
    padded[:, :, 1 : height + 1, 1 : width + 1] = image
    return padded


class _Layout:
    """Sizes of the planar padded copy and how points become its flat indices."""

    def __init__(
        self,
        padded_shape: tuple[int, ...],
        padding: str,
        align_corners: bool,
        dtype: Any,
        *,
        nan_free: bool = False,
        window: tuple[tuple[int, int], tuple[int, int]] | None = None,
        shared: bool = False,
    ) -> None:
        items, self.channels, padded_h, self.padded_w = padded_shape
        self.padding, self.align_corners, self.dtype = padding, align_corners, np.dtype(dtype)
        self.nan_free = nan_free  # the points are known to hold no NaN: no search for it
        self.shared = shared  # one item of the copy read by every item of points
        # The copy is the whole padded image, whose first value is pixel (-1, -1) of
        # the ring, or a ``window`` of it: (first row, first column) and the image's
        # (height, width), which the points' pixels are computed for.
        if window is None:
            window = ((-1, -1), (padded_h - 3, self.padded_w - 3))
        self.corner, (self.height, self.width) = window
        self.plane = padded_h * self.padded_w
        # Index arithmetic in floating point is exact while every value it takes fits
        # the mantissa: ``y * W + x`` (at most ``reach``) in the points' dtype, or in
        # float64 beyond float32's 2**24; the items' offsets too when the whole sum
        # fits, else they are added as integers.
        top, left = self.corner
        reach = (abs(top) + self.height + 3) * self.padded_w + abs(left) + self.width + 3
        rows = items * self.channels * self.plane
        mantissa = FLOAT32_EXACT if dtype == np.float32 else 2**53
        self.float_offsets = rows + 2 * reach < mantissa
        self.index_float = dtype if reach < mantissa else np.float64
        self.narrow = rows + 2 * reach <= INT32_ROWS

    def item_offsets(self, first: int, stop: int) -> Any:
        """(items, 1) offsets of items ``first:stop``, less the first value's pixel's
        ``y * W + x`` (for the whole copy, plus the ring's ``(+1, +1)``)."""
        items = self._integer_offsets(stop)[first:, None]
        return items.astype(self.index_float) if self.float_offsets else items

    def _integer_offsets(self, items: int) -> Any:
        """(items,) int64 offsets of the first ``items`` items (see `item_offsets`)."""
        size = 0 if self.shared else self.channels * self.plane
        offsets = np.arange(items, dtype=np.int64) * size
        offsets -= self.corner[0] * self.padded_w + self.corner[1]
        return offsets

    def loop_inputs(self, mode: str, batch: int) -> tuple[Any, Any, Any]:
        """``offsets`` of the ``batch`` items, ``settings`` and ``constants`` of
        `geowarp.samplers._numba_kernels`' loops."""
        offsets = self._integer_offsets(batch)
        settings = [self.padded_w, self.plane, self.channels, self.align_corners, mode == "nearest"]
        low_x, high_x, low_y, high_y = (
            (0, self.width - 1, 0, self.height - 1)
            if self.padding == "border"
            else (-1, self.width, -1, self.height)
        )
        constants = [1, 0.5, self.width, self.height, self.width - 1, self.height - 1]
        constants += [low_x, high_x, low_y, high_y, COORDINATE_LIMIT]
        return offsets, np.array(settings, dtype=np.int64), np.array(constants, dtype=self.dtype)

    def pixels(self, coord: Any, size: int, pixel: Any) -> Any:
        """`source_pixels` (without slope) of one chunk's coordinates into ``pixel``.

        NaN is kept (see `no_nan`).
        """
        if self.padding == "reflection":  # folding has no shortcut: the core's own code
            folded, _ = source_pixels(
                coord, size, self.padding, self.align_corners, np, with_slope=False
            )
            np.copyto(pixel, folded)
            return pixel
        if self.align_corners and size == 1:  # inf * 0 would be NaN: clamp first, as the core
            coord = np.clip(coord, -COORDINATE_LIMIT, COORDINATE_LIMIT)
        # grid.axis_to_pixel's arithmetic, op for op (* 0.5 is / 2 exactly, and faster).
        # The core's clamp to +-COORDINATE_LIMIT changes nothing here: a coordinate
        # beyond it ends clamped to the same end of [low, high] either way.
        np.add(coord, 1, out=pixel)
        if self.align_corners:
            pixel *= 0.5
            pixel *= size - 1
        else:
            pixel *= size
            pixel -= 1
            pixel *= 0.5
        low, high = (0, size - 1) if self.padding == "border" else (-1, size)
        # one clip pass; it keeps NaN, which `no_nan` then sends to -1 as the core does
        return pixel.clip(low, high, out=pixel)

    def index(self, buffers: _Buffers, offsets: Any) -> Any:
        """Flat indices of pixels ``(x0, y0)`` (integral floats) of channel 0; overwrites ``y0``."""
        x, y = buffers.x0, buffers.y0
        if buffers.wide is not None:  # float32 points on a plane beyond 2**24 values
            x, y = buffers.wide
            np.copyto(x, buffers.x0)
            np.copyto(y, buffers.y0)
        y *= self.padded_w
        y += x
        if self.float_offsets:
            y += offsets
        if self.narrow:  # through int32 where it holds every index: two casts beat one
            np.copyto(buffers.narrow, y, casting="unsafe")
            np.copyto(buffers.index, buffers.narrow)
        else:
            np.copyto(buffers.index, y, casting="unsafe")
        index = buffers.index
        if not self.float_offsets:
            index += offsets
        return index


def _loops_for(padding: str, values: Any, points: Any, loops: Any, size: int) -> Any:
    """The compiled loops' module to use (``loops`` itself unless `_AUTO`), or None, for
    ``size`` output values (`geowarp.samplers._compiled.kernels`)."""
    if loops is not _AUTO:
        return loops
    if padding == "reflection" or values != points or values not in _compiled.DTYPES:
        return None
    return _compiled.kernels(size)


def loops_serve(padding: str, dtype: Any, size: int) -> bool:
    """Whether numba's compiled loops are ready and serve ``padding`` on images of ``dtype``
    for a warp of ``size`` output values."""
    return _loops_for(padding, dtype, dtype, _AUTO, size) is not None


def check_compiled(loops: Any) -> str | None:
    """Where the compiled ``loops`` differ from numpy's chunks on small warps, else None.

    Every mode, padding they serve, ``align_corners``, dtype and kind (affine,
    homography with points behind it, a grid with NaN, inf and huge values,
    a one-pixel axis). Compiles the loops as a side effect.
    """
    rng = np.random.default_rng(0)
    cases = [("affine", 7, 9), ("projective", 7, 9), ("grid", 7, 9), ("grid", 1, 5)]
    settings = itertools.product(("bilinear", "nearest"), ("zeros", "border"), (False, True))
    combinations: Any = itertools.product(_compiled.DTYPES, cases, list(settings))
    for dtype, (kind, height, width), (mode, padding, align) in combinations:
        image = rng.normal(size=(2, 3, height, width)).astype(dtype)
        fill = rng.normal(size=3).astype(dtype)
        if kind == "grid":
            grid = rng.uniform(-1.5, 1.5, size=(2, 4, 6, 2)).astype(dtype)
            grid[0, 0, :4, 0] = [np.nan, np.inf, -np.inf, 1e30]
            grid[1, 0, :5] = [[0.125, -0.375]] * 5  # half-way ties with align_corners
            padded = _padded_planar(image, fill)
            layout = _Layout(padded.shape, padding, align, dtype)
            results = [_sample_copy(padded, grid, layout, mode, use) for use in (None, loops)]
        else:
            rows = rng.normal(scale=0.5, size=(2, 3, 3)).astype(dtype)
            rows[:, :2, :2] += np.eye(2, dtype=dtype)
            rows = rows[:, :2] if kind == "affine" else rows
            xs, ys = np.linspace(-1, 1, 6, dtype=dtype), np.linspace(-1, 1, 4, dtype=dtype)
            options: dict[str, Any] = {"mode": mode, "padding": padding, "align_corners": align}
            arguments = (image, rows, xs, ys, fill)
            results = [warp_matrix(*arguments, **options, _loops=use) for use in (None, loops)]
        if not np.array_equal(results[0], results[1], equal_nan=True):
            return f"the compiled loops differ from numpy's: {kind} {dtype}, {mode}, {padding}"
    return None


def no_nan(*pixels: Any) -> bool:
    """Whether none of the arrays holds NaN; if one does, its NaNs become -1 (the ring).

    ``source_pixels`` reads a NaN coordinate at -1; a ``min`` finds NaN in one
    cheap pass, and the fix is paid only where NaN is there.
    """
    clean = True
    for pixel in pixels:
        if np.isnan(np.min(pixel)):
            np.copyto(pixel, -1, where=np.isnan(pixel))
            clean = False
    return clean


def _bilinear_chunk(
    flat: Any,
    grid_x: Any,
    grid_y: Any,
    offsets: Any,
    layout: _Layout,
    out: Any,
    buffers: _Buffers,
) -> None:
    x = layout.pixels(grid_x, layout.width, buffers.x)
    y = layout.pixels(grid_y, layout.height, buffers.y)
    if not layout.nan_free:
        no_nan(x, y)
    np.floor(x, out=buffers.x0)
    np.floor(y, out=buffers.y0)
    x -= buffers.x0  # the fractions, as the portable code's ``x - x0``
    y -= buffers.y0
    index = layout.index(buffers, offsets)
    step = layout.padded_w
    top, bottom, low = buffers.first, buffers.second, buffers.third
    for channel in range(layout.channels):
        start = channel * layout.plane
        # Two lerps along x, one along y, as the portable code, in place. Every
        # index is in range: "wrap" reads the same values as "raise", without its
        # slower bounds checks.
        flat[start + 1 :].take(index, mode="wrap", out=top)
        top -= flat[start:].take(index, mode="wrap", out=low)
        top *= x
        top += low
        flat[start + step + 1 :].take(index, mode="wrap", out=bottom)
        bottom -= flat[start + step :].take(index, mode="wrap", out=low)
        bottom *= x
        bottom += low
        bottom -= top
        bottom *= y
        np.add(top, bottom, out=out[:, channel])


def _nearest_chunk(
    flat: Any,
    grid_x: Any,
    grid_y: Any,
    offsets: Any,
    layout: _Layout,
    out: Any,
    buffers: _Buffers,
) -> None:
    x = layout.pixels(grid_x, layout.width, buffers.x)
    y = layout.pixels(grid_y, layout.height, buffers.y)
    if not layout.nan_free:
        no_nan(x, y)
    np.round(buffers.x, out=buffers.x0)  # half-way ties to even, as xp.round
    np.round(buffers.y, out=buffers.y0)
    index = layout.index(buffers, offsets)
    for channel in range(layout.channels):
        flat[channel * layout.plane :].take(index, out=out[:, channel], mode="wrap")


_CHUNKS.update(bilinear=_bilinear_chunk, nearest=_nearest_chunk)
