"""What `SpatialTransformer` and `ICSTN` share: arguments, the identity head, the warp."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Literal, overload

import torch
from torch import nn

from .. import _params
from .._errors import GeowarpTypeError, GeowarpValueError
from ..transforms import Transform
from ._options import WarpOptions
from ._params import init_identity_


class _LazyIdentityHead(nn.LazyLinear):
    """A linear head whose input width is found on the first call, starting at the identity.

    ``torch.nn.LazyLinear`` materialises its weights on the first call and
    then resets them; the reset here is `init_identity_`, the STN paper's
    initialisation (zero weights, identity bias). It becomes a plain
    ``torch.nn.Linear`` after that call.
    """

    def reset_parameters(self) -> None:
        # Linear.__init__ resets a placeholder before the lazy weights exist
        if not self.has_uninitialized_params() and self.in_features != 0:
            init_identity_(self)


class TransformerModule(nn.Module, abc.ABC):
    """A module that predicts a transform from an image and warps the image by it.

    The arguments both transformers share are taken here, once: the
    localisation network, the family, the head's input width (found on the
    first call when omitted), the warp settings and the control grid.
    Subclasses implement `predict_params`.
    """

    control_points: torch.Tensor | None

    def __init__(
        self,
        localization: nn.Module,
        transform: str | type[Transform],
        *,
        features: int | None,
        out_shape: Sequence[int] | None,
        mode: str,
        padding: str,
        align_corners: bool,
        fill_value: float | None,
        control_grid: Sequence[int],
    ) -> None:
        super().__init__()
        family = _params.parameterised_family(transform, "transform")
        self.family = family
        self.kind = transform if isinstance(transform, str) else family.__name__
        self.options = WarpOptions.checked(out_shape, mode, padding, align_corners, fill_value)
        wants_points = "control_points" in _params.family_options(
            family.from_params,  # type: ignore[attr-defined]
            control_points=True,
        )
        points = family.control_points(control_grid) if wants_points else None  # type: ignore[attr-defined]
        # not persistent: it follows from the constructor's control_grid, like the head's size
        self.register_buffer(
            "control_points",
            None if points is None else torch.as_tensor(points, dtype=torch.get_default_dtype()),
            persistent=False,
        )
        self.control_grid = tuple(control_grid) if wants_points else None
        if not isinstance(localization, nn.Module):
            raise GeowarpTypeError(
                f"localization must be a torch.nn.Module; got {type(localization).__name__}"
            )
        self.localization = localization
        count = _params.param_count(family, control_grid)
        if features is None:
            self.head: nn.Linear = _LazyIdentityHead(count)
        elif isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise GeowarpValueError(f"features must be a positive int or None; got {features!r}")
        else:
            self.head = init_identity_(nn.Linear(features, count))

    @property
    def param_count(self) -> int:
        """How many numbers describe one transform (the head's output width)."""
        return int(self.head.out_features)

    def regress(self, image: torch.Tensor) -> torch.Tensor:
        """Localisation network, flattened, then the head: (B, P) numbers for ``image``."""
        features = torch.flatten(self.localization(image), start_dim=1)
        if not isinstance(self.head, nn.LazyLinear) and features.shape[1] != self.head.in_features:
            raise GeowarpValueError(
                f"localization must give features={self.head.in_features} numbers per image; "
                f"got output of shape {tuple(features.shape)}"
            )
        return self.head(features)

    def to_transform(self, params: torch.Tensor) -> Transform:
        """The transform of ``params`` (B, P) in this module's family."""
        return _params.from_params(self.family, params, control_points=self.control_points)

    @abc.abstractmethod
    def predict_params(self, image: torch.Tensor) -> torch.Tensor:
        """The predicted parameters (B, P), "identity plus params" (see `params_to_transform`)."""

    def predict_transform(self, image: torch.Tensor) -> Transform:
        """The predicted transform, batch shape (B,); it maps output points to input points.

        Examples
        --------
        >>> import torch
        >>> from geowarp.torch import SpatialTransformer
        >>> stn = SpatialTransformer(torch.nn.Flatten(), "projective")
        >>> transform = stn.predict_transform(torch.rand(2, 1, 4, 4))
        >>> type(transform).__name__, transform.batch_shape
        ('Projective', (2,))
        """
        return self.to_transform(self.predict_params(image))

    @overload
    def forward(
        self, image: torch.Tensor, *, return_transform: Literal[False] = False
    ) -> torch.Tensor: ...

    @overload
    def forward(
        self, image: torch.Tensor, *, return_transform: Literal[True]
    ) -> tuple[torch.Tensor, Transform]: ...

    def forward(
        self, image: torch.Tensor, *, return_transform: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, Transform]:
        """Warp ``image`` (B, C, H, W) by the transform predicted from it.

        Parameters
        ----------
        image : tensor of shape (B, C, H, W)
            Floating-point images.
        return_transform : bool
            Also return the predicted transform (batch shape (B,)), e.g. to
            map keypoints with ``.apply`` (output to input points) or
            ``.inverse().apply`` (input to output points), or to compose it.

        Returns
        -------
        out : tensor of shape (B, C, H_out, W_out)
            ``(H_out, W_out)`` is ``out_shape``, or the input's size.
        transform : Transform, only with ``return_transform=True``
        """
        transform = self.predict_transform(image)
        out = self.options.warp(image, transform)
        if return_transform:
            return out, transform
        return out

    def extra_repr(self) -> str:
        """The transform family and warp settings, for ``print(module)``."""
        return f"transform={self.kind!r}, {self.options.describe()}"
