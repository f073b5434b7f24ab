"""PyTorch building blocks for spatial transformer networks.

`SpatialTransformer` (Jaderberg et al., 2015) runs a localisation network,
regresses the parameters of an affine, projective or thin-plate spline
transform and warps the image; `ICSTN` (Lin and Lucey, 2017) applies one
predictor recurrently and composes its updates. The helpers build other
variants: parameter vectors to transforms and back (`params_to_transform`,
`transform_to_params`), `init_identity_` for a regression head, and IC-STN's
`compose_params`.

Parameters are "identity plus params" for every family, so zeros are the
identity; transforms map output points to input points, as everywhere in
geowarp, and plain `geowarp.warp` with torch tensors is differentiable too.

Examples
--------
>>> import torch
>>> from geowarp.torch import SpatialTransformer
>>> localization = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 32))
>>> stn = SpatialTransformer(localization, "tps", features=32, out_shape=(8, 8))
>>> stn(torch.rand(4, 1, 16, 16)).shape
torch.Size([4, 1, 8, 8])
"""

import torch as _torch

from .. import _namespace, backends
from ._backend import BACKEND
from ._icstn import ICSTN
from ._params import (
    compose_params,
    init_identity_,
    param_count,
    params_to_transform,
    tps_control_points,
    transform_to_params,
)
from ._stn import SpatialTransformer

# Register the backend now rather than lazily on the first tensor: the lazy path
# imports a module, and an import inside a torch.compile'd forward breaks the graph.
backends.register(BACKEND)
# ... and answer now what geowarp asks of a tensor's type, so a compiled first call
# (before any eager one) finds it cached.
_namespace.prime(_torch.empty(0))

__all__ = [
    "ICSTN",
    "SpatialTransformer",
    "compose_params",
    "init_identity_",
    "param_count",
    "params_to_transform",
    "tps_control_points",
    "transform_to_params",
]
