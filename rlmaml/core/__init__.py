"""The functional MAML core shared by the RL and supervised modes."""

from .adapt import adapt, inner_update, meta_sgd_step_sizes, reptile_gradient
from .optim import backtracking_line_search, conjugate_gradient, hessian_vector_product
from .params import Params, detach_params, flatten, forward, named_params, unflatten

__all__ = [
    "Params", "named_params", "forward", "flatten", "unflatten", "detach_params",
    "adapt", "inner_update", "reptile_gradient", "meta_sgd_step_sizes",
    "hessian_vector_product", "conjugate_gradient", "backtracking_line_search",
]
