"""The functional MAML core shared by the RL and supervised modes."""

from .adapt import adapt, inner_update, meta_sgd_step_sizes, reptile_gradient
from .optim import (
    backtracking_line_search,
    conjugate_gradient,
    gradient_jacobian_product,
    hessian_vector_product,
)
from .params import Params, detach_params, flatten, forward, named_params, unflatten

__all__ = [
    "Params",
    "adapt",
    "backtracking_line_search",
    "conjugate_gradient",
    "detach_params",
    "flatten",
    "forward",
    "gradient_jacobian_product",
    "hessian_vector_product",
    "inner_update",
    "meta_sgd_step_sizes",
    "named_params",
    "reptile_gradient",
    "unflatten",
]
