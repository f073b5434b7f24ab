"""Parameter vectors and transforms: the pieces STN variants are built from.

Every family uses the IC-STN parameterisation "identity plus ``params``", so a
vector of zeros is the identity whatever the family:

* ``"affine"``, 6 numbers: ``[[1 + p0, p1, p2], [p3, 1 + p4, p5]]`` (`geowarp.Affine.from_params`);
* ``"projective"``, 8 numbers: ``I + [p0 .. p7, 0]`` row by row (`geowarp.Projective.from_params`);
* ``"tps"``, ``2 K`` numbers: how far each of ``K`` control points moves, ``(dx0, dy0, dx1, ...)``,
  a `geowarp.ThinPlateSpline` taking the control points to ``control_points + offsets``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .. import _params
from .._errors import GeowarpTypeError, GeowarpValueError
from .._params import matrix_family, param_count, parameterised_family
from ..transforms import MatrixTransform, Projective, ThinPlateSpline, Transform, get_family

__all__ = [
    "compose_params",
    "init_identity_",
    "param_count",
    "params_to_transform",
    "tps_control_points",
    "transform_to_params",
]


def tps_control_points(
    control_grid: Sequence[int] = (4, 4),
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """An evenly spaced grid of control points spanning the normalized frame, [-1, 1]^2.

    Parameters
    ----------
    control_grid : (rows, columns)
        At least 2 by 2; the default 4 by 4 gives 16 points.
    dtype, device
        Of the result; torch's defaults when omitted.

    Returns
    -------
    points : tensor of shape (rows * columns, 2)
        ``(x, y)`` row by row: x varies fastest.

    Examples
    --------
    >>> from geowarp.torch import tps_control_points
    >>> tps_control_points((2, 3))
    tensor([[-1., -1.],
            [ 0., -1.],
            [ 1., -1.],
            [-1.,  1.],
            [ 0.,  1.],
            [ 1.,  1.]])
    """
    like = torch.empty(0, dtype=dtype or torch.get_default_dtype(), device=device)
    return ThinPlateSpline.control_points(control_grid, like=like)


def params_to_transform(
    params: torch.Tensor, kind: str = "affine", *, control_points: torch.Tensor | None = None
) -> Transform:
    """The transform that a parameter vector stands for: identity plus ``params``.

    Parameters
    ----------
    params : tensor of shape (..., P)
        ``P`` is `param_count` of ``kind``; zeros are the identity.
    kind : str or Transform subclass
        The transform family (``"affine"``, ``"projective"``, ``"tps"`` or a
        registered one); the module docstring gives each layout.
    control_points : tensor of shape (K, 2), optional
        For ``"tps"`` (see `tps_control_points`): where the control points
        sit in the output image; ``params`` moves them in the input. The
        default 4 by 4 grid when omitted.

    Returns
    -------
    Transform
        `geowarp.Affine`, `geowarp.Projective` or `geowarp.ThinPlateSpline`
        with batch shape ``params.shape[:-1]``, differentiable w.r.t. ``params``.

    Examples
    --------
    >>> import torch
    >>> from geowarp.torch import params_to_transform
    >>> shift = params_to_transform(torch.tensor([[0.0, 0.0, 0.5, 0.0, 0.0, 0.0]]))
    >>> shift.matrix
    tensor([[[1.0000, 0.0000, 0.5000],
             [0.0000, 1.0000, 0.0000]]])
    """
    family = parameterised_family(kind, "kind")
    return _params.from_params(family, params, control_points=control_points)


def transform_to_params(
    transform: Transform,
    kind: str | None = None,
    *,
    control_points: torch.Tensor | None = None,
) -> torch.Tensor:
    """The parameter vector of ``transform``: the inverse of `params_to_transform`.

    Parameters
    ----------
    transform : Transform
        A geowarp transform with torch tensors.
    kind : str or Transform subclass, optional
        The family to express it in; by default the transform's own. An
        `geowarp.Affine` can be written as ``"projective"``, and any transform
        as ``"tps"``: its displacement at the control points.
    control_points : tensor of shape (K, 2), optional
        For ``"tps"``; by default a thin-plate spline's own target points.

    Returns
    -------
    params : tensor of shape (..., P)
        ``...`` is the transform's batch shape. Projective parameters are
        normalised so that ``H[2, 2] == 1``.

    Examples
    --------
    >>> import torch
    >>> import geowarp as gw
    >>> from geowarp.torch import transform_to_params
    >>> zoom = gw.Affine(torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    >>> transform_to_params(zoom)
    tensor([1., 0., 0., 0., 1., 0.])
    >>> transform_to_params(zoom, "projective")
    tensor([1., 0., 0., 0., 1., 0., 0., 0.])
    """
    if not isinstance(transform, Transform):
        raise GeowarpTypeError(
            f"transform must be a geowarp Transform; got {type(transform).__name__}"
        )
    family = type(transform) if kind is None else get_family(kind, "kind")
    if family is ThinPlateSpline:
        if control_points is None and not isinstance(transform, ThinPlateSpline):
            raise GeowarpValueError(
                f"control_points is required to write a {type(transform).__name__} as 'tps'"
            )
        spline = transform if isinstance(transform, ThinPlateSpline) else None
        if spline is None or control_points is not None:
            offsets = transform.apply(control_points) - control_points
            return offsets.reshape(*offsets.shape[:-2], 2 * offsets.shape[-2])
        return spline.as_params()
    if family is Projective and isinstance(transform, MatrixTransform):
        return Projective(transform.matrix3x3()).as_params()
    if isinstance(transform, family) and hasattr(transform, "as_params"):
        return transform.as_params()
    raise GeowarpValueError(
        f"a {type(transform).__name__} has no exact {kind or family.__name__!r} parameters; "
        "use kind='tps' (with control_points) to sample it at control points"
    )


def compose_params(
    update: torch.Tensor, params: torch.Tensor, kind: str | type[Transform] = "affine"
) -> torch.Tensor:
    """IC-STN's composition: the parameters of ``W(update) @ W(params)``.

    Parameters
    ----------
    update : tensor of shape (..., P)
        The predicted update ``dp``.
    params : tensor of shape (..., P)
        The current parameters ``p``.
    kind : {"affine", "projective"} or a MatrixTransform subclass
        A matrix family; a thin-plate spline has no closed-form composition
        (compose those transforms with ``@`` into a `geowarp.Composed`).

    Returns
    -------
    tensor of shape (..., P)
        Differentiable w.r.t. both inputs; projective results are renormalised
        so that ``H[2, 2] == 1``.

    Notes
    -----
    Lin and Lucey (CVPR 2017) write the update as ``M(p_new) = M(dp) M(p)``
    and, in their code, sample the image at ``M(p) @ [x, y, 1]`` for each
    output pixel ``(x, y)``: their ``M`` maps output points to input points,
    exactly as geowarp transforms do. The product therefore carries over with
    no inversion: ``W(p_new) = W(dp) @ W(p)`` in geowarp's maths-order ``@``,
    so ``W(p_new).apply(x) == W(dp).apply(W(p).apply(x))``.

    Examples
    --------
    >>> import torch
    >>> from geowarp.torch import compose_params
    >>> shift = torch.tensor([0.0, 0.0, 0.25, 0.0, 0.0, 0.0])
    >>> compose_params(shift, shift)
    tensor([0.0000, 0.0000, 0.5000, 0.0000, 0.0000, 0.0000])
    """
    family = matrix_family(kind, "kind")
    if update.shape[-1:] != params.shape[-1:]:
        raise GeowarpValueError(
            f"update and params must have the same last dimension; got shapes "
            f"{tuple(update.shape)} and {tuple(params.shape)}"
        )
    product = family.from_params(update).matrix3x3() @ family.from_params(params).matrix3x3()
    # as_params divides a homography by its H[2, 2], the renormalisation the paper applies
    return family(product).as_params()


def init_identity_(head: nn.Linear, identity: torch.Tensor | None = None) -> nn.Linear:
    """Make a regression head predict the identity: zero weights, identity bias.

    The STN paper's initialisation: whatever the features, the head outputs
    ``identity``, so the warp starts as the identity and learns from there.

    Parameters
    ----------
    head : torch.nn.Linear
        The last layer; it needs a bias. Changed in place (as ``torch.nn.init`` does).
    identity : tensor of shape (out_features,), optional
        The identity's parameters. Zeros (the default) are the identity in
        geowarp's "identity plus params" layout; pass e.g.
        ``torch.tensor([1.0, 0, 0, 0, 1, 0])`` for a head predicting a raw
        ``affine_grid`` theta.

    Returns
    -------
    torch.nn.Linear
        ``head`` itself.

    Examples
    --------
    >>> import torch
    >>> from geowarp.torch import init_identity_
    >>> head = init_identity_(torch.nn.Linear(4, 6))
    >>> head(torch.randn(2, 4))
    tensor([[0., 0., 0., 0., 0., 0.],
            [0., 0., 0., 0., 0., 0.]], grad_fn=<AddmmBackward0>)
    """
    if not isinstance(head, nn.Linear) or head.bias is None:
        raise GeowarpTypeError(
            f"head must be a torch.nn.Linear with a bias; got {type(head).__name__}"
        )
    if identity is not None and tuple(identity.shape) != (head.out_features,):
        raise GeowarpValueError(
            f"identity must have shape ({head.out_features},) to match head.out_features; "
            f"got {tuple(identity.shape)}"
        )
    with torch.no_grad():
        head.weight.zero_()
        if identity is None:
            head.bias.zero_()
        else:
            head.bias.copy_(identity)
    return head
