"""Moved: training is ``faceattr.train`` (``Trainer``, ``train_view``, ``Runtime``, ``FaceFeed``,
``LossTerm``). This module keeps the old names for one release, with a DeprecationWarning."""
import warnings

from .errors import NonFiniteLoss  # noqa: F401
from .train import *  # noqa: F401,F403
from .train import __all__ as _names

warnings.warn("faceattr.trainer is now faceattr.train", DeprecationWarning, stacklevel=2)

__all__ = list(_names) + ["NonFiniteLoss"]
