"""rlmaml: Model-Agnostic Meta-Learning for reinforcement learning and few-shot supervised learning.

Public API (the functional core shared by both modes)::

    from rlmaml import adapt, named_params, forward
    fast_params = adapt(lambda p: loss(forward(model, p, x_s), y_s), named_params(model),
                        num_steps=1, step_size=0.4, first_order=False)
    query_loss = loss(forward(model, fast_params, x_q), y_q)   # differentiates through the inner step

Importing rlmaml registers the task environments with Gymnasium (``rlmaml/Navigation2D-v0``, ...).
"""

from . import core as _core
from .core import *  # the core API, listed in rlmaml.core.__all__
from .errors import UserError

__version__ = "0.1.0"

try:  # environments are registered on import; a missing optional backend must not break the core
    from . import envs as _envs  # noqa: F401
except ImportError as _exc:  # pragma: no cover - only when the envs package itself is broken
    import warnings

    warnings.warn(f"rlmaml environments unavailable: {_exc}")

__all__ = [*_core.__all__, "UserError"]  # noqa: PLE0604
