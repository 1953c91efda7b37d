"""Parameters as ``dict[str, Tensor]`` and the functional forward pass.

Every model in rlmaml is a plain ``nn.Module``; meta-learning never mutates it.
Instead the parameters live in a dict θ = {name: tensor} and a forward pass is
``functional_call(module, θ, x)``. Adapted parameters θ' are just another dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]


def named_params(module: nn.Module, *, detach: bool = False) -> Params:
    """θ = {name: parameter} of ``module`` (optionally detached leaf copies that require grad)."""
    if detach:
        return {n: p.detach().clone().requires_grad_(p.requires_grad) for n, p in module.named_parameters()}
    return dict(module.named_parameters())


def forward(module: nn.Module, params: Mapping[str, Tensor], *args, **kwargs):
    """f_θ(x): run ``module`` with the parameters in ``params`` (buffers are the module's own)."""
    return functional_call(module, dict(params), args, kwargs)


def flatten(tensors: Mapping[str, Tensor] | Iterable[Tensor]) -> Tensor:
    """Concatenate tensors (dict values in order) into one flat vector."""
    values = tensors.values() if isinstance(tensors, Mapping) else tensors
    return torch.cat([t.reshape(-1) for t in values])


def unflatten(vector: Tensor, like: Mapping[str, Tensor]) -> Params:
    """Inverse of :func:`flatten`: split ``vector`` into tensors shaped like ``like``."""
    out, offset = {}, 0
    for name, ref in like.items():
        n = ref.numel()
        out[name] = vector[offset : offset + n].view_as(ref)
        offset += n
    if offset != vector.numel():
        raise ValueError(f"vector has {vector.numel()} elements, parameters need {offset}")
    return out


def detach_params(params: Mapping[str, Tensor], requires_grad: bool = True) -> Params:
    """Fresh leaf copies of ``params`` (cut from any graph)."""
    return {n: p.detach().clone().requires_grad_(requires_grad) for n, p in params.items()}
