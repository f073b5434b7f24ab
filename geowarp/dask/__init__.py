"""Chunked warps of images larger than memory, on dask arrays.

`warp` builds a lazy dask array, one task per output block: each task maps
only its own block of output pixel centres through the transform, reads only
the input region those points reach (found when the graph is built, from the
same pixel coordinates the samplers use, so folding by ``"border"`` and
``"reflection"`` padding and NaN points are accounted for exactly; for a
thin-plate spline, from a lattice of the block's points and a bound on the
spline's slope, a region a little larger than the points reach), and samples
it as `geowarp.sample` does on the whole image. It runs on any dask
scheduler, ``dask.distributed`` included.

Examples
--------
>>> import numpy as np
>>> import dask.array as da
>>> import geowarp as gw
>>> import geowarp.dask
>>> image = da.ones((1, 1, 4, 4), chunks=(1, 1, 2, 2))
>>> out = geowarp.dask.warp(image, gw.Affine(np.eye(2, 3)), chunks=2)
>>> float(out.sum().compute())
16.0
"""

from __future__ import annotations

from ._warp import warp

__all__ = ["warp"]
