"""Intensity-based image registration: `register` and its result, `Registration`."""

from ._api import register
from ._result import Registration

__all__ = ["Registration", "register"]
