"""Stochastic MLP policies evaluated from a parameter dict.

A policy is an ``nn.Module`` that is never mutated by meta-learning; its
parameters θ live in a dict and :func:`forward` returns the action distribution
π_θ(·|s) for a batch of observations::

    Gaussian:     a ~ N(μ_θ(s), diag(exp(2·log σ)))   (state-independent, learned log σ)
    Categorical:  a ~ Cat(softmax(f_θ(s)))

Per-task adapted parameters θ'_1..θ'_T are *stacked* along a leading task
dimension (every tensor gets shape ``[T, *shape]``); the caller says so with
``stacked=True``, it is never guessed from the tensors. With stacked parameters the
observations must be task-major, ``[T, ..., obs_dim]``, and each layer is one
batched matmul ``torch.baddbmm(b, h, Wᵀ)`` over all tasks, so a rollout of T
tasks × E episodes evaluates the policy once per time step on the whole batch.
``rlmaml bench meta-step`` measures this against ``torch.func.vmap`` of
``functional_call`` (see :func:`vmap_mean`).

Any ``nn.Module`` with a ``distribution`` method of that signature is a :class:`Policy`: meta-learning
reads its parameters with ``named_parameters()`` and never mutates it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Distribution, Independent, Normal
from torch.func import functional_call, vmap

from ..core.params import Params


@runtime_checkable
class Policy(Protocol):
    """π_θ(·|s): the one method meta-learning needs of a policy (an ``nn.Module`` whose ``named_parameters``
    are θ).

    ``params`` is θ as a dict; with ``stacked=True`` every tensor carries a leading task dimension ``[T, …]``
    and ``obs`` is task-major ``[T, …, obs_dim]``: task t's rows are evaluated with θ_t.
    """

    def distribution(self, params: Mapping[str, Tensor], obs: Tensor, *, stacked: bool = False) -> Distribution:
        ...


# softplus: a smooth ReLU. With ReLU the inner gradient jumps wherever a unit changes sign on a training state, so
# the adapted θ'(θ) is only piecewise smooth and the measured KL of a meta-step exceeds its Fisher model even for
# small steps; with a smooth nonlinearity the model holds to second order (``rlmaml bench kl-profile``,
# results/studies/trpo-kl-profile).
NONLINEARITIES = {"relu": torch.relu, "tanh": torch.tanh, "softplus": torch.nn.functional.softplus}


def _check_sizes(obs_dim: int, out_dim: int, hidden_sizes: Sequence[int], nonlinearity: str) -> None:
    if obs_dim <= 0 or out_dim <= 0 or any(int(h) <= 0 for h in hidden_sizes):
        raise ValueError(f"policy sizes must be positive, got obs_dim={obs_dim}, out={out_dim}, hidden={list(hidden_sizes)}")
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity {nonlinearity!r} is not allowed; allowed: {', '.join(NONLINEARITIES)}")


class _MLP(nn.Module):
    """Shared body: Linear layers ``layers.0 … layers.L`` with a nonlinearity between them."""

    def __init__(self, obs_dim: int, out_dim: int, hidden_sizes: Sequence[int], nonlinearity: str):
        super().__init__()
        _check_sizes(obs_dim, out_dim, hidden_sizes, nonlinearity)
        sizes = [obs_dim, *map(int, hidden_sizes), out_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in itertools.pairwise(sizes))
        for layer in self.layers:  # Xavier-uniform weights, zero biases (as the reference MAML-RL code)
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.obs_dim, self.out_dim = obs_dim, out_dim
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.nonlinearity = nonlinearity

    def mlp(self, obs: Tensor) -> Tensor:
        """f(s) with the module's own layers (used by vmap/functional_call)."""
        act = NONLINEARITIES[self.nonlinearity]
        h = obs
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = act(h)
        return h


def mlp_output(module: _MLP, params: Mapping[str, Tensor], obs: Tensor, stacked: bool = False) -> Tensor:
    """f_θ(s) for plain (``W: [out, in]``) or, with ``stacked``, task-stacked (``W: [T, out, in]``, obs
    ``[T, ..., in]``) θ."""
    act = NONLINEARITIES[module.nonlinearity]
    num_layers = len(module.layers)
    if stacked:
        num_tasks = params["layers.0.weight"].shape[0]
        lead = obs.shape[1:-1]
        h = obs.reshape(num_tasks, -1, obs.shape[-1])
    else:
        h = obs
    for i in range(num_layers):
        weight, bias = params[f"layers.{i}.weight"], params[f"layers.{i}.bias"]
        if stacked:
            h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
        else:
            h = torch.nn.functional.linear(h, weight, bias)
        if i < num_layers - 1:
            h = act(h)
    if stacked:
        h = h.reshape(num_tasks, *lead, h.shape[-1])
    return h


def vmap_mean(module: _MLP, params: Mapping[str, Tensor], obs: Tensor) -> Tensor:
    """Same as :func:`mlp_output` for stacked θ, via ``vmap(functional_call)`` (benchmark reference)."""
    mlp_params = {n: p for n, p in params.items() if n.startswith("layers.")}

    def one_task(p, o):
        return functional_call(module, p, (o,), strict=False, tie_weights=False)

    return vmap(one_task)(mlp_params, obs)


class GaussianMLPPolicy(_MLP):
    """π_θ(a|s) = N(a; c ⊙ μ_θ(s), diag (c ⊙ σ)²), μ an MLP, log σ a learned state-independent vector.

    ``c`` (``action_scale``, a fixed buffer, default 1) is the half-width of the env's action box: the
    network acts in normalised units (μ, σ ∈ [-1, 1]-box units, so ``init_log_std = 0`` starts at one
    half-width of exploration), as rllab's ``normalize(env)`` did for the original experiments. Ratios and
    KL divergences are unchanged by the scale; gradients w.r.t. θ are those of the normalised policy.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int] = (100, 100),
                 nonlinearity: str = "relu", init_log_std: float = 0.0,
                 action_scale: float | Sequence[float] = 1.0):
        super().__init__(obs_dim, act_dim, hidden_sizes, nonlinearity)
        if not math.isfinite(init_log_std):
            raise ValueError(f"init_log_std must be finite, got {init_log_std}")
        scale = torch.as_tensor(action_scale, dtype=torch.float32).expand(act_dim).clone()
        if not (torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(f"action_scale must be positive and finite, got {scale.tolist()}")
        self.act_dim = act_dim
        self.log_std = nn.Parameter(torch.full((act_dim,), float(init_log_std)))
        self.register_buffer("action_scale", scale)

    def forward(self, obs: Tensor) -> Tensor:  # functional_call entry point: the mean μ_θ(s)
        return self.mlp(obs)

    def distribution(self, params: Mapping[str, Tensor], obs: Tensor, *, stacked: bool = False) -> Distribution:
        loc, std = self.loc_and_scale(params, obs, stacked=stacked)
        return Independent(Normal(loc, std, validate_args=False), 1, validate_args=False)

    def loc_and_scale(self, params: Mapping[str, Tensor], obs: Tensor, *, stacked: bool = False) -> tuple[Tensor, Tensor]:
        """(c ⊙ μ_θ(s), c ⊙ σ) of :meth:`distribution` without the distribution object (the rollouts' hot path)."""
        mean = mlp_output(self, params, obs, stacked)
        log_std = params["log_std"]
        if stacked:  # [T, act] -> [T, 1, …, 1, act]
            log_std = log_std.view(log_std.shape[0], *([1] * (mean.dim() - 2)), log_std.shape[-1])
        scale = self.action_scale.to(mean.dtype)
        return mean * scale, (log_std.exp() * scale).expand_as(mean)


class CategoricalMLPPolicy(_MLP):
    """π_θ(a|s) = Categorical(softmax(f_θ(s))) for discrete action spaces."""

    def __init__(self, obs_dim: int, num_actions: int, hidden_sizes: Sequence[int] = (100, 100),
                 nonlinearity: str = "relu"):
        super().__init__(obs_dim, num_actions, hidden_sizes, nonlinearity)
        self.num_actions = num_actions

    def forward(self, obs: Tensor) -> Tensor:
        return self.mlp(obs)

    def distribution(self, params: Mapping[str, Tensor], obs: Tensor, *, stacked: bool = False) -> Distribution:
        return Categorical(logits=mlp_output(self, params, obs, stacked), validate_args=False)


def action_scale_of(policy: _MLP) -> list[float]:
    """c of a Gaussian policy (ones for a categorical one): what a checkpoint stores to rebuild it."""
    scale = getattr(policy, "action_scale", None)
    return [1.0] * policy.out_dim if scale is None else scale.tolist()


def saved_action_scale(state: Mapping) -> float | list[float]:
    """c stored in a training checkpoint; checkpoints written before ``normalize_actions`` acted in raw
    action units, i.e. c = 1."""
    return state.get("action_scale", 1.0)


def forward(policy: Policy, params: Mapping[str, Tensor], obs: Tensor, stacked: bool = False) -> Distribution:
    """π_θ(·|s): the action distribution of ``policy`` under parameters ``params`` (plain, or task-stacked
    with ``stacked``)."""
    return policy.distribution(params, obs, stacked=stacked)


def stack_params(params: Mapping[str, Tensor], num_tasks: int) -> Params:
    """θ → {n: θ_n expanded to [T, *shape]}: one (shared) copy per task, differentiable w.r.t. θ.

    Gradients of Σ_t L_t w.r.t. the stacked tensors are the per-task gradients ∇L_t(θ).
    """
    return {n: p.unsqueeze(0).expand(num_tasks, *p.shape) for n, p in params.items()}


def task_params(params: Mapping[str, Tensor], task: int) -> Params:
    """θ'_t: the parameters of one task from a stacked dict."""
    return {n: p[task] for n, p in params.items()}


def build_policy(obs_dim: int, act_dim: int, hidden_sizes: Sequence[int] = (100, 100),
                 nonlinearity: str = "relu", init_log_std: float = 0.0, discrete: bool = False,
                 action_scale: float | Sequence[float] = 1.0) -> _MLP:
    """Gaussian policy for continuous actions, categorical for ``discrete=True`` (act_dim = #actions)."""
    if discrete:
        return CategoricalMLPPolicy(obs_dim, act_dim, hidden_sizes, nonlinearity)
    return GaussianMLPPolicy(obs_dim, act_dim, hidden_sizes, nonlinearity, init_log_std, action_scale)
