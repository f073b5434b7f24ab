"""`Warp` and `SpatialTransformer`: Keras 3 layers over geowarp's core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from .. import _params
from .._errors import GeowarpTypeError, GeowarpValueError
from ..grid import check_shape
from ..samplers import check_settings
from ..transforms import Transform
from ..warp import warp

__all__ = ["SpatialTransformer", "Warp"]

_DATA_FORMATS = ("channels_last", "channels_first")


@keras.saving.register_keras_serializable(package="geowarp")
class Warp(keras.layers.Layer):
    """Warp images by transforms given as parameter vectors: ``Warp()(image, params)``.

    The differentiable counterpart of ``keras.ops.image.affine_transform``:
    gradients reach the image and the parameters, on the TensorFlow, JAX and
    PyTorch backends alike, through `geowarp.sample` (``grid_sample``
    semantics).

    Parameters
    ----------
    transform : str or Transform subclass
        The family of the parameters (identity plus params, so zeros are the
        identity): 6 numbers for ``"affine"`` (the 2x3 matrix minus the
        identity, row by row), 8 for ``"projective"`` (the 3x3 homography
        minus the identity, without its last entry), ``2 K`` for ``"tps"``
        (how far each of ``K`` control points moves, ``(dx0, dy0, dx1, ...)``),
        or any registered family with ``param_count``/``from_params``.
        Transforms map output points to input points in the normalized frame,
        as ``theta`` in PyTorch's ``affine_grid``.
    out_shape : (H_out, W_out), optional
        Output size; the input's size when omitted.
    mode : {"bilinear", "nearest"}
    padding : {"zeros", "border", "reflection", "constant"}
    align_corners : bool
    fill_value : float or sequence of C floats, optional
        As in `geowarp.warp`.
    control_grid : (rows, columns)
        The thin-plate spline's control points, spread evenly over [-1, 1]^2.
    data_format : {"channels_last", "channels_first"}
        Image layout: ``(B, H, W, C)`` (Keras' default) or ``(B, C, H, W)``.
    **kwargs
        Passed to ``keras.layers.Layer`` (``name``, ``dtype``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from geowarp.keras import Warp
    >>> image = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    >>> shift = np.array([[0.0, 0.0, 0.25, 0.0, 0.0, 0.0]] * 2, dtype="float32")
    >>> out = Warp("affine", out_shape=(4, 4))(image, shift)
    >>> tuple(out.shape)
    (2, 4, 4, 1)
    >>> identity = Warp()(image, np.zeros((2, 6), dtype="float32"))
    >>> bool(np.allclose(np.asarray(identity), image, atol=1e-6))
    True
    """

    def __init__(
        self,
        transform: str | type[Transform] = "affine",
        *,
        out_shape: Sequence[int] | None = None,
        mode: str = "bilinear",
        padding: str = "zeros",
        align_corners: bool = False,
        fill_value: float | Sequence[float] | None = None,
        control_grid: Sequence[int] = (4, 4),
        data_format: str = "channels_last",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.family = _params.parameterised_family(transform, "transform")
        # a registered family's name, which the config can hold
        self.transform = _params.family_name(self.family) or transform
        self.out_shape = None if out_shape is None else check_shape(out_shape, "out_shape")
        mode, padding, align_corners = check_settings(mode, padding, align_corners, fill_value)
        if data_format not in _DATA_FORMATS:
            raise GeowarpValueError(
                f"data_format must be one of {_DATA_FORMATS}; got {data_format!r}"
            )
        self.mode, self.padding, self.data_format = mode, padding, data_format
        self.align_corners = align_corners
        self.fill_value = _plain_fill(fill_value)
        self.control_grid = check_shape(control_grid, "control_grid")
        self._param_count = _params.param_count(self.family, self.control_grid)

    @property
    def param_count(self) -> int:
        """How many numbers describe one transform."""
        return self._param_count

    def call(self, image: Any, params: Any) -> Any:
        """Warp ``image`` (in ``data_format``) by the transforms ``params`` (B, P)."""
        if self.data_format == "channels_last":
            image = ops.transpose(image, (0, 3, 1, 2))
        if len(params.shape) != 2 or params.shape[-1] != self._param_count:
            raise GeowarpValueError(
                f"params must have shape (B, {self._param_count}) for transform "
                f"{self.transform!r}; got {tuple(params.shape)}"
            )
        transform = _params.from_params(self.family, params, control_grid=self.control_grid)
        out_shape = self.out_shape or tuple(int(s) for s in image.shape[2:])
        # the batch may stay unknown until run time (a Keras model traced by TensorFlow)
        out = warp(
            image,
            transform,
            out_shape,
            mode=self.mode,
            padding=self.padding,
            align_corners=self.align_corners,
            fill_value=self.fill_value,
        )
        if self.data_format == "channels_last":
            out = ops.transpose(out, (0, 2, 3, 1))
        return out

    def compute_output_shape(
        self, image_shape: tuple[int | None, ...], params_shape: Any = None
    ) -> tuple[int | None, ...]:
        """The warped image's shape: ``out_shape`` in place of the input's (H, W)."""
        if self.data_format == "channels_last":
            batch, height, width, channels = image_shape
            return (batch, *(self.out_shape or (height, width)), channels)
        batch, channels, height, width = image_shape
        return (batch, channels, *(self.out_shape or (height, width)))

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, for ``keras.saving``."""
        return {
            **super().get_config(),
            "transform": self.transform,
            "out_shape": self.out_shape,
            "mode": self.mode,
            "padding": self.padding,
            "align_corners": self.align_corners,
            "fill_value": self.fill_value,
            "control_grid": self.control_grid,
            "data_format": self.data_format,
        }


@keras.saving.register_keras_serializable(package="geowarp")
class SpatialTransformer(keras.layers.Layer):
    """Localisation network, regression head, warp: a spatial transformer (Jaderberg et al.).

    ``localization`` turns each image into features; a ``Dense`` head turns
    them into the transform's parameters ("identity plus params", see `Warp`)
    and the image is warped by the transform. The head starts with zero
    weights and biases, the identity, as the STN paper prescribes: an
    untrained layer returns its input (resampled to ``out_shape``).

    Parameters
    ----------
    localization : keras.layers.Layer
        Any layer or model taking the images (in ``data_format``) to
        features of shape (B, ...), flattened before the head.
    transform : str or Transform subclass
        The transform family, as in `Warp`.
    out_shape, mode, padding, align_corners, fill_value, control_grid, data_format
        As in `Warp`.
    **kwargs
        Passed to ``keras.layers.Layer``.

    Attributes
    ----------
    localization : keras.layers.Layer
    head : keras.layers.Dense
        Features to parameters, initialised to the identity.
    warp : Warp

    Examples
    --------
    >>> import numpy as np
    >>> import keras
    >>> from geowarp.keras import SpatialTransformer
    >>> localization = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(8)])
    >>> stn = SpatialTransformer(localization, "tps", out_shape=(6, 6))
    >>> image = np.random.default_rng(0).random((2, 12, 12, 3)).astype("float32")
    >>> tuple(stn(image).shape)
    (2, 6, 6, 3)
    """

    def __init__(
        self,
        localization: keras.layers.Layer,
        transform: str | type[Transform] = "affine",
        *,
        out_shape: Sequence[int] | None = None,
        mode: str = "bilinear",
        padding: str = "zeros",
        align_corners: bool = False,
        fill_value: float | Sequence[float] | None = None,
        control_grid: Sequence[int] = (4, 4),
        data_format: str = "channels_last",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(localization, keras.layers.Layer):
            raise GeowarpTypeError(
                f"localization must be a keras.layers.Layer; got {type(localization).__name__}"
            )
        self.localization = localization
        self.warp = Warp(
            transform,
            out_shape=out_shape,
            mode=mode,
            padding=padding,
            align_corners=align_corners,
            fill_value=fill_value,
            control_grid=control_grid,
            data_format=data_format,
            name="warp",
        )
        self.flatten = keras.layers.Flatten(name="flatten")
        self.head = keras.layers.Dense(
            self.warp.param_count, kernel_initializer="zeros", bias_initializer="zeros", name="head"
        )

    def build(self, image_shape: tuple[int | None, ...]) -> None:
        """Build the localisation network and the head for images of ``image_shape``."""
        if not self.localization.built:
            self.localization.build(image_shape)
        features = self.localization.compute_output_shape(image_shape)
        flat = self.flatten.compute_output_shape(features)
        self.head.build(flat)
        self.built = True

    def predict_params(self, image: Any) -> Any:
        """The parameters (B, P) predicted for ``image``."""
        return self.head(self.flatten(self.localization(image)))

    def call(self, image: Any) -> Any:
        """Warp ``image`` by the transform predicted from it."""
        return self.warp(image, self.predict_params(image))

    def compute_output_shape(self, image_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """The warped image's shape."""
        return self.warp.compute_output_shape(image_shape)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (the localisation network serialised), for saving."""
        warp = self.warp.get_config()
        return {
            **super().get_config(),
            "localization": keras.saving.serialize_keras_object(self.localization),
            **{key: warp[key] for key in _WARP_OPTIONS},
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SpatialTransformer:
        """Rebuild the layer, localisation network included, from `get_config`'s output."""
        config = dict(config)
        config["localization"] = keras.saving.deserialize_keras_object(config["localization"])
        return cls(**config)


_WARP_OPTIONS = (
    "transform",
    "out_shape",
    "mode",
    "padding",
    "align_corners",
    "fill_value",
    "control_grid",
    "data_format",
)


def _plain_fill(fill_value: Any) -> float | list[float] | None:
    # None, a float or a list of floats: what the config can hold, what gw.sample takes.
    if fill_value is None:
        return None
    try:
        return float(fill_value)
    except TypeError:
        pass
    try:
        return [float(v) for v in fill_value]
    except TypeError:
        raise GeowarpTypeError(
            f"fill_value must be a float or a sequence of floats; got {fill_value!r}"
        ) from None
