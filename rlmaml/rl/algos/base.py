"""The meta-optimizer protocol and its registry (see :mod:`rlmaml.rl.algos`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from ...core.params import Params
from ...plugins import lookup
from ..policies import Policy

log = logging.getLogger("rlmaml.rl.algos")


@runtime_checkable
class MetaOptimizer(Protocol):
    """Owns θ (``params``, leaf tensors changed in place only by an accepted step) and updates it."""

    params: Params

    def update(self, batch) -> dict[str, Any]:
        """One meta-update from a sampled :class:`~rlmaml.rl.sampling.MetaBatch` (its k training batches
        ``batch.train_batches``, one per inner step, and the validation batch ``batch.valid``); returns the
        metrics logged for the meta-batch: at least ``surrogate_before``, ``surrogate_after``, ``kl``,
        ``line_search_steps``, ``step_accepted``."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint needs to continue exactly: ``{"params": θ, ...}``."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        ...


META_OPTIMIZERS: dict[str, type] = {}


def register_meta_optimizer(name: str, cls: type) -> type:
    """Make ``cls`` (with ``from_config(policy, params, cfg)``) the meta-optimizer of ``meta_optimizer=name``."""
    if not callable(getattr(cls, "from_config", None)):
        raise TypeError(f"meta-optimizer {name!r}: {cls.__name__} has no from_config(policy, params, cfg)")
    META_OPTIMIZERS[name] = cls
    return cls


def make_meta_optimizer(cfg, policy: Policy, params: Mapping[str, Tensor]) -> MetaOptimizer:
    """The meta-optimizer named by ``cfg.meta_optimizer``, owning a copy of ``params``."""
    return lookup(META_OPTIMIZERS, cfg.meta_optimizer, "meta_optimizer").from_config(policy, params, cfg)


def all_finite(*xs) -> bool:
    """Every element of every tensor (or number) is finite."""
    return all(bool(torch.isfinite(torch.as_tensor(x)).all()) for x in xs)


def rejected(metrics: dict, reason: str, level: int = logging.WARNING) -> dict:
    """``metrics`` of a meta-update that was not taken (θ unchanged), with the reason logged."""
    log.log(level, "meta-update rejected, parameters unchanged: %s", reason)
    metrics["step_accepted"] = False
    metrics["reject_reason"] = reason
    return metrics


def empty_metrics() -> dict[str, Any]:
    """The metrics of a meta-update before it is attempted."""
    return {"surrogate_before": float("nan"), "surrogate_after": float("nan"), "kl": float("nan"),
            "line_search_steps": 0, "step_accepted": False}


def leaf_copy(params: Mapping[str, Tensor]) -> Params:
    """θ as fresh leaf tensors that a meta-optimizer owns."""
    return {n: p.detach().clone().requires_grad_() for n, p in params.items()}


def params_state(params: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """θ for a checkpoint: detached CPU copies."""
    return {n: p.detach().cpu().clone() for n, p in params.items()}


def load_params_(params: Mapping[str, Tensor], saved: Mapping[str, Tensor]) -> None:
    """θ ← the checkpoint's θ, in place (the tensors keep their identity, device and dtype)."""
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(saved[n])
