"""Meta-optimizers: how θ is updated from a meta-batch's training and validation task batches.

A meta-optimizer is any object with the small :class:`MetaOptimizer` protocol; :data:`META_OPTIMIZERS` maps
the config key ``meta_optimizer`` to a class with a ``from_config(policy, params, cfg)`` constructor::

    trpo   the TRPO meta-step of MAML-TRPO (natural gradient through the adaptation, line search)
    adam   one Adam step on ∇_θ S, for comparison

A new one is a module beside these and one :func:`register_meta_optimizer` call (docs/extending/meta-optimizer.md).
"""

from .adam import Adam
from .base import META_OPTIMIZERS, MetaOptimizer, make_meta_optimizer, register_meta_optimizer
from .trpo import TRPO

register_meta_optimizer("trpo", TRPO)
register_meta_optimizer("adam", Adam)

__all__ = ["META_OPTIMIZERS", "TRPO", "Adam", "MetaOptimizer", "make_meta_optimizer", "register_meta_optimizer"]
