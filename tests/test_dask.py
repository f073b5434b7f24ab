"""`geowarp.dask.warp`: lazy, blockwise, equal to the in-memory warp, reading only what it needs."""

from __future__ import annotations

import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import geowarp as gw  # noqa: E402
import geowarp.dask as gwd  # noqa: E402
from geowarp._errors import GeowarpTypeError, GeowarpValueError  # noqa: E402
from geowarp.dask._grid import block_grid  # noqa: E402
from geowarp.transforms import _tps_ops  # noqa: E402

RNG = np.random.default_rng(0)
IMAGE = RNG.normal(size=(2, 3, 37, 45))
TARGET = RNG.uniform(-1, 1, (7, 2))
SOURCE = TARGET + RNG.normal(0, 0.1, (7, 2))


class Shift(gw.Transform):
    """A user's family, mapped point by point (the base class's grid)."""

    def __init__(self, offset):
        self.offset = offset

    @property
    def batch_shape(self):
        return tuple(self.offset.shape[:-1])

    def apply(self, points):
        points = self.validate_points(points)
        return points + self.offset[..., None, :]


FAMILIES = {
    "affine": gw.Affine(np.array([[0.9, 0.2, 0.05], [-0.15, 1.1, -0.1]])),
    "projective": gw.Projective(  # the horizon crosses the output: NaN points
        np.array([[0.9, 0.2, 0.05], [-0.15, 1.1, -0.1], [0.9, -0.7, 1.0]])
    ),
    "tps": gw.ThinPlateSpline.from_landmarks(SOURCE, TARGET),
    "composed": gw.Affine(np.array([[1.3, 0.1, 0.2], [0.0, 0.8, 0.1]]))
    @ gw.Projective(np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.2, 0.1, 1.0]])),
    "user": Shift(np.array([0.31, -0.2])),
    "batched": gw.Affine(
        np.array([[[2.5, 0.3, 0.1], [0.2, 2.0, 0.0]], [[0.5, 0, 0], [0, 0.5, 0]]])
    ),
}
# Splines beyond the matrix families: float32, a batch, many landmarks, regularized,
# a subclass mapping points its own way (`apply` per point) and one inside a composition
MANY = RNG.uniform(-1.1, 1.1, (60, 2))
SPLINES = {
    "tps-float32": gw.ThinPlateSpline(SOURCE.astype(np.float32), TARGET.astype(np.float32)),
    "tps-batched": gw.ThinPlateSpline(
        np.stack([SOURCE, TARGET + RNG.normal(0, 0.1, (7, 2))]), TARGET
    ),
    "tps-many": gw.ThinPlateSpline(MANY + RNG.normal(0, 0.02, (60, 2)), MANY, regularization=0.01),
    "tps-composed": gw.Affine(np.array([[1.2, 0.1, 0.0], [0.0, 0.9, 0.1]]))
    @ gw.ThinPlateSpline.from_landmarks(SOURCE, TARGET),
}


class OwnGridSpline(gw.ThinPlateSpline):
    """A spline subclass with the base class's grid: `apply` at every pixel centre."""

    _grid = gw.Transform._grid


SPLINES["tps-subclass"] = OwnGridSpline(SOURCE, TARGET)
EVERY = {**FAMILIES, **SPLINES}


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(params=["weights", "mapped"])
def spline_path(request, monkeypatch):
    """Both ways a numpy spline grid is computed: through weights, or mapping every point."""
    if request.param == "mapped":  # what grids with weights over the limit do
        monkeypatch.setattr(_tps_ops, "WEIGHT_LIMIT", 0)
    return request.param


@pytest.mark.parametrize("family", sorted(EVERY))
@pytest.mark.parametrize("align_corners", [False, True])
def test_blocks_of_the_grid_are_the_full_grid(family, align_corners, spline_path):
    transform = EVERY[family]
    shape = (37, 53)
    full = transform.sampling_grid(shape, align_corners=align_corners)
    for top in range(0, 37, 10):
        for left in range(0, 53, 16):
            rows, cols = slice(top, top + 10), slice(left, left + 16)
            block = block_grid(transform, shape, rows, cols, align_corners)
            np.testing.assert_array_equal(block, full[..., rows, cols, :])


def test_a_one_point_block_is_the_full_grid(spline_path):
    transform = FAMILIES["tps"]
    full = transform.sampling_grid((5, 6))
    for row in range(5):
        for col in range(6):
            block = block_grid(transform, (5, 6), slice(row, row + 1), slice(col, col + 1), False)
            np.testing.assert_array_equal(block[0, 0], full[row, col])


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection", "constant"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize(
    ("chunks", "out_chunks"),
    [((1, 2, 10, 16), (9, 13)), ((2, 3, 37, 15), (20, 33))],
    ids=["ragged", "dividing"],
)
def test_equal_to_the_in_memory_warp(family, mode, padding, align_corners, chunks, out_chunks):
    transform = FAMILIES[family]
    fill = [1.0, -2.0, 3.5] if padding == "constant" else None
    settings = {"mode": mode, "padding": padding, "align_corners": align_corners}
    expected = gw.warp(IMAGE, transform, (40, 33), fill_value=fill, **settings)
    image = da.from_array(IMAGE, chunks=chunks)
    out = gwd.warp(image, transform, (40, 33), chunks=out_chunks, fill_value=fill, **settings)
    assert out.chunks[2:] == da.core.normalize_chunks(out_chunks, (40, 33))
    assert out.chunks[1] == image.chunks[1]
    computed = out.compute()
    assert computed.dtype == expected.dtype
    np.testing.assert_array_equal(computed, expected)


# The plain spline runs every padding in test_equal_to_the_in_memory_warp; its
# variants here need only one, and reflection folds the most points back.
@pytest.mark.parametrize("family", sorted(SPLINES))
@pytest.mark.parametrize("padding", ["reflection"])
def test_splines_equal_the_in_memory_warp(family, padding, spline_path):
    transform = SPLINES[family]
    image = IMAGE.astype(np.float32) if family == "tps-float32" else IMAGE
    for mode in ("bilinear", "nearest"):
        settings = {"mode": mode, "padding": padding, "align_corners": mode == "nearest"}
        expected = gw.warp(image, transform, (40, 33), **settings)
        dask_image = da.from_array(image, chunks=(1, 2, 10, 16))
        out = gwd.warp(dask_image, transform, (40, 33), chunks=(9, 11), **settings)
        np.testing.assert_array_equal(out.compute(), expected)


BENT = gw.ThinPlateSpline(  # landmarks moved far, some outside the image: steep slopes
    TARGET + RNG.normal(0, 0.6, (7, 2)), TARGET
)


@pytest.mark.parametrize("name", ["tps", "tps-float32", "tps-batched", "tps-many", "bent"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_a_spline_blocks_bounds_hold_every_point_of_it(
    name, align_corners, spline_path, monkeypatch
):
    # the block's input is found from a lattice of its points and a slope bound:
    # every point of the block lies inside the bounds
    from geowarp.dask import _grid

    transform = BENT if name == "bent" else EVERY[name]
    out_shape = (300, 260)
    solved = _grid.solve_spline(transform, out_shape)
    blocks = [(slice(0, 300), slice(0, 260)), (slice(7, 8), slice(250, 251))]
    blocks += [(slice(0, 130), slice(64, 129)), (slice(129, 300), slice(200, 260))]
    for step in (_grid.LATTICE_STEP, 1):  # 1: the lattice is every point, the bounds tight
        monkeypatch.setattr(_grid, "LATTICE_STEP", step)
        for rows, cols in blocks:
            grid = block_grid(transform, out_shape, rows, cols, align_corners, solved)
            points = np.reshape(np.asarray(grid, dtype=np.float64), (-1, 2))
            low, high = _grid.spline_range(transform, out_shape, rows, cols, align_corners, solved)
            assert (points >= low).all()
            assert (points <= high).all()
            if step == 1:
                np.testing.assert_allclose(low, points.min(axis=0), rtol=1e-4, atol=1e-4)
                np.testing.assert_allclose(high, points.max(axis=0), rtol=1e-4, atol=1e-4)


def test_a_smooth_spline_blocks_bounds_are_close():
    # a 4 x 4 control grid moved a little (examples/dask_gigapixel.py's): the margin the
    # slope bound adds is a small part of the block's extent
    from geowarp.dask._grid import solve_spline, spline_range

    control = gw.ThinPlateSpline.control_points((4, 4))
    spline = gw.ThinPlateSpline(control + RNG.normal(scale=0.05, size=control.shape), control)
    out_shape, rows, cols = (4096, 4096), slice(1024, 1536), slice(2048, 2560)
    solved = solve_spline(spline, out_shape)
    grid = block_grid(spline, out_shape, rows, cols, False, solved)
    points = np.reshape(grid, (-1, 2))
    low, high = spline_range(spline, out_shape, rows, cols, False, solved)
    extent = points.max(axis=0) - points.min(axis=0)
    assert (points.min(axis=0) - low < 0.15 * extent).all()
    assert (high - points.max(axis=0) < 0.15 * extent).all()


def test_a_spline_block_reads_a_window_holding_every_neighbour(spline_path):
    # the span from the bounds contains the span of the block's own points
    from geowarp.dask._warp import _Plan

    image = da.from_array(IMAGE, chunks=(1, 3, 37, 45))
    for transform in (BENT, SPLINES["tps-many"]):
        out = gwd.warp(image, transform, (90, 70), chunks=(31, 40))
        np.testing.assert_array_equal(out.compute(), gw.warp(IMAGE, transform, (90, 70)))
        from geowarp.dask._grid import solve_spline

        plan = _Plan(
            transform, (37, 45), (90, 70), ("bilinear", "zeros", False), np.float64, np.float64
        )
        plan.solved = solve_spline(transform, (90, 70))
        for rows, cols in [(slice(0, 31), slice(0, 40)), (slice(62, 90), slice(40, 70))]:
            bounded = plan.span(slice(0, 2), rows, cols)
            x, y = plan.pixels(slice(0, 2), rows, cols)
            (top, bottom), (left, right) = bounded
            assert top <= int(np.floor(y.min()))
            assert bottom >= int(np.floor(y.max())) + 1
            assert left <= int(np.floor(x.min()))
            assert right >= int(np.floor(x.max())) + 1


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_float32_and_integer_images(mode):
    transform = FAMILIES["affine"]
    for image in (IMAGE.astype(np.float32), (IMAGE * 50).astype(np.int16)):
        expected = gw.warp(image, transform, mode=mode)
        out = gwd.warp(da.from_array(image, chunks=(1, 1, 16, 16)), transform, mode=mode)
        assert out.dtype == expected.dtype
        np.testing.assert_array_equal(out.compute(), expected)


def test_defaults_numpy_input_and_batch_broadcast():
    transform = FAMILIES["batched"]  # batch of two transforms, one image item
    image = IMAGE[:1]
    out = gwd.warp(image, transform)
    assert out.shape == (2, 3, 37, 45)
    assert out.chunks[2:] == ((37,), (45,))
    np.testing.assert_array_equal(out.compute(), gw.warp(image, transform))
    chunked = gwd.warp(da.from_array(IMAGE, chunks=(1, 3, 16, 20)), transform, (50, 50))
    assert chunked.chunks[2:] == ((16, 16, 16, 2), (20, 20, 10))


def test_far_away_and_nan_points_read_nothing():
    far = gw.Affine(np.array([[1.0, 0.0, 50.0], [0.0, 1.0, 0.0]]))
    image = da.from_array(IMAGE, chunks=(1, 1, 10, 10))
    out = gwd.warp(image, far, padding="constant", fill_value=7.0)
    assert np.all(out.compute() == 7.0)
    assert not any(
        key[0] == image.name for key in dict(out.__dask_graph__()) if isinstance(key, tuple)
    )


class _Recorder:
    """An array-like whose reads are recorded (slices of the rows and columns)."""

    def __init__(self, values):
        self.values, self.shape, self.dtype, self.ndim = values, values.shape, values.dtype, 4
        self.reads: list[tuple[slice, slice]] = []
        self._lock = threading.Lock()

    def __getitem__(self, index):
        with self._lock:
            self.reads.append((index[2], index[3]))
        return self.values[index]


@pytest.mark.parametrize("padding", ["zeros", "reflection"])
def test_each_block_reads_only_its_region(padding):
    values = RNG.normal(size=(1, 1, 64, 64))
    transform = gw.Projective(np.array([[0.3, 0.05, 0.1], [0.0, 0.25, -0.1], [0.05, 0.0, 1.0]]))
    recorder = _Recorder(values)
    image = da.from_array(recorder, chunks=(1, 1, 8, 8), asarray=True)
    out = gwd.warp(image, transform, (64, 64), chunks=16, padding=padding)
    recorder.reads.clear()
    block = out.blocks[0, 0, 1, 2].compute()
    grid = transform.sampling_grid((64, 64))[16:32, 32:48]
    expected = gw.warp(values, transform, (64, 64), padding=padding)[0, 0, 16:32, 32:48]
    np.testing.assert_array_equal(block[0, 0], expected)
    # the chunks the block's 2x2 neighbourhoods reach, and no other
    x = (grid[..., 0] + 1) * 64 / 2 - 0.5
    y = (grid[..., 1] + 1) * 64 / 2 - 0.5
    rows = range(int(np.floor(y.min())) // 8, (int(np.floor(y.max())) + 1) // 8 + 1)
    cols = range(int(np.floor(x.min())) // 8, (int(np.floor(x.max())) + 1) // 8 + 1)
    read = {(r.start // 8, c.start // 8) for r, c in recorder.reads}
    assert read == {(r, c) for r in rows for c in cols}
    assert len(read) < 64 // 4  # a fraction of the 64 chunks
    recorder.reads.clear()
    out.compute()
    assert len(recorder.reads) < 64  # the whole warp never reads the whole image


def test_refusals():
    image = da.zeros((1, 1, 4, 4), chunks=2)
    with pytest.raises(GeowarpTypeError, match="dask array"):
        gwd.warp([[1.0]], FAMILIES["affine"])
    with pytest.raises(GeowarpTypeError, match="Transform"):
        gwd.warp(image, np.eye(2, 3))
    with pytest.raises(GeowarpValueError, match="fill_value"):
        gwd.warp(image, FAMILIES["affine"], fill_value=1.0)
    with pytest.raises(GeowarpValueError, match=r"\(B, C, H, W\)"):
        gwd.warp(da.zeros((4, 4), chunks=2), FAMILIES["affine"])


def test_on_a_distributed_cluster():
    distributed = pytest.importorskip("distributed")
    image = da.from_array(IMAGE, chunks=(1, 3, 16, 16))
    transform = FAMILIES["projective"]
    expected = gw.warp(IMAGE, transform, (40, 33), padding="reflection")
    # Enough landmarks for LAPACK to split the spline's solve between threads here, while
    # the workers run single-threaded BLAS (dask's nanny sets OPENBLAS_NUM_THREADS=1)
    landmarks = RNG.uniform(-1, 1, (120, 2))
    spline = gw.ThinPlateSpline(landmarks + RNG.normal(0, 0.02, (120, 2)), landmarks)
    expected_spline = gw.warp(IMAGE, spline, (40, 33))
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        out = gwd.warp(image, transform, (40, 33), chunks=16, padding="reflection")
        computed = client.compute(out).result()
        computed_spline = client.compute(gwd.warp(image, spline, (40, 33), chunks=16)).result()
    np.testing.assert_array_equal(computed, expected)
    np.testing.assert_array_equal(computed_spline, expected_spline)
