"""The supervised few-shot experiment: config, model/task construction and the meta-update.

MAML (Finn et al., 2017, Algorithm 2). For a meta-batch of tasks T_i with support set S_i
and query set Q_i:

    θ'_i = θ − α ∇_θ L_{S_i}(θ)            (k inner steps, ``inner_steps``)
    θ   ← θ − β ∇_θ (1/B) Σ_i L_{Q_i}(θ'_i)  (Adam with learning rate β = ``meta_lr``)

``first_order`` drops the second-order term (FOMAML), ``meta_sgd`` learns a per-parameter
α alongside θ (Meta-SGD), and ``algorithm=reptile`` replaces the meta-gradient with
g = θ − (1/B) Σ_i θ'_i (Nichol et al., 2018), fed to the same optimizer.

A meta-batch whose query loss (or any gradient) is not finite is skipped: θ is left
untouched and a ``RuntimeWarning`` is issued.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..config import require
from ..core import adapt, forward, meta_sgd_step_sizes, named_params, reptile_gradient
from ..core.params import Params
from .models import Conv4, SinusoidMLP
from .tasks import OmniglotTasks, SinusoidTasks, SupportQueryBatch


@dataclass
class SupervisedConfig:
    """Every key of a supervised run (YAML presets: sinusoid, omniglot, omniglot-20way)."""

    task: Literal["sinusoid", "omniglot"] = "sinusoid"
    # sinusoid regression
    amplitude_range: list[float] = field(default_factory=lambda: [0.1, 5.0])
    phase_range: list[float] = field(default_factory=lambda: [0.0, math.pi])
    input_range: list[float] = field(default_factory=lambda: [-5.0, 5.0])
    hidden_sizes: list[int] = field(default_factory=lambda: [40, 40])
    pretrained_baseline: bool = True
    # Omniglot classification
    num_ways: int = 5
    data_dir: str = ""
    cache_dir: str = ""
    meta_train_characters: int = 1200
    split_seed: int = 0
    rotations: bool = True
    num_filters: int = 64
    # task sizes: support/query examples per class (classification) or points (regression)
    num_shots: int = 10
    num_query: int = 10
    # meta-learning
    algorithm: Literal["maml", "reptile"] = "maml"
    first_order: bool = False
    meta_sgd: bool = False
    inner_step_size: float = 0.01
    inner_steps: int = 1
    meta_batch_size: int = 25
    meta_optimizer: Literal["adam", "sgd"] = "adam"
    meta_lr: float = 1e-3
    num_iterations: int = 20000
    checkpoint_every: int = 500
    # evaluation on held-out tasks
    eval_tasks: int = 600
    eval_steps: list[int] = field(default_factory=lambda: [0, 1, 10])
    eval_query: int = 100
    eval_seed: int = 1000
    # run
    device: str = "cpu"
    seed: int = 0
    num_threads: int = 0

    def validate(self) -> None:
        for key in ("num_ways", "num_shots", "num_query", "inner_steps", "meta_batch_size", "num_iterations",
                    "checkpoint_every", "eval_tasks", "eval_query", "meta_train_characters", "num_filters"):
            require(getattr(self, key) > 0, key, "a positive integer", getattr(self, key))
        require(self.num_threads >= 0, "num_threads", ">= 0 (0 = torch default)", self.num_threads)
        require(self.inner_step_size > 0 and math.isfinite(self.inner_step_size), "inner_step_size",
                "a positive number", self.inner_step_size)
        require(self.meta_lr > 0 and math.isfinite(self.meta_lr), "meta_lr", "a positive number", self.meta_lr)
        require(len(self.eval_steps) > 0 and min(self.eval_steps) >= 0, "eval_steps",
                "a non-empty list of integers >= 0", self.eval_steps)
        require(len(self.hidden_sizes) > 0 and min(self.hidden_sizes) > 0, "hidden_sizes",
                "a non-empty list of positive integers", self.hidden_sizes)
        for key in ("amplitude_range", "phase_range", "input_range"):
            r = getattr(self, key)
            require(len(r) == 2 and r[0] <= r[1], key, "[low, high] with low <= high", r)
        require(not (self.meta_sgd and self.algorithm == "reptile"), "meta_sgd",
                "false with algorithm=reptile (Reptile has no meta-gradient for α)", self.meta_sgd)
        if self.task == "omniglot":
            require(self.num_shots + self.num_query <= 20, "num_query",
                    f"at most {20 - self.num_shots} (20 drawings per character, num_shots={self.num_shots})",
                    self.num_query)
            require(self.num_shots + self.eval_query <= 20, "eval_query",
                    f"at most {20 - self.num_shots} (20 drawings per character, num_shots={self.num_shots})",
                    self.eval_query)
        device = self.device
        require(device == "cpu" or device.startswith("cuda") or device == "mps", "device",
                "cpu, cuda or cuda:N", device)
        if device.startswith("cuda"):
            require(torch.cuda.is_available(), "device", "cpu (no CUDA device is available here)", device)

    @property
    def classification(self) -> bool:
        return self.task == "omniglot"


# ---------------------------------------------------------------------------- construction

def build_model(cfg: SupervisedConfig) -> nn.Module:
    if cfg.task == "sinusoid":
        return SinusoidMLP(cfg.hidden_sizes)
    return Conv4(cfg.num_ways, cfg.num_filters)


def task_loss(cfg: SupervisedConfig) -> Callable[[Tensor, Tensor], Tensor]:
    """Per-task loss: MSE (regression) or cross-entropy (classification)."""
    if cfg.classification:
        return F.cross_entropy
    return F.mse_loss


def batched_tasks(cfg: SupervisedConfig) -> bool:
    """Whether the model runs a whole meta-batch at once with task-batched parameters (exact)."""
    return cfg.task == "sinusoid"


class TaskSource:
    """Samples meta-train and meta-test task batches for ``cfg``."""

    def __init__(self, cfg: SupervisedConfig, device: str | torch.device, dtype: torch.dtype = torch.float32):
        self.cfg, self.device, self.dtype = cfg, device, dtype
        if cfg.task == "sinusoid":
            self.sinusoid = SinusoidTasks(tuple(cfg.amplitude_range), tuple(cfg.phase_range), tuple(cfg.input_range))
        else:
            from .omniglot import load_omniglot, split_characters

            images = load_omniglot(cfg.data_dir or None, cfg.cache_dir or None)
            train_ids, test_ids = split_characters(len(images), cfg.meta_train_characters, cfg.split_seed)
            require(len(test_ids) >= cfg.num_ways, "meta_train_characters",
                    f"small enough to leave {cfg.num_ways} test characters", cfg.meta_train_characters)
            self.train = OmniglotTasks(images, train_ids, cfg.rotations, device, dtype)
            self.test = OmniglotTasks(images, test_ids, False, device, dtype)

    def sample(self, rng: np.random.Generator, num_tasks: int, split: str = "train",
               num_query: int | None = None) -> SupportQueryBatch:
        cfg = self.cfg
        num_query = cfg.num_query if num_query is None else num_query
        if cfg.task == "sinusoid":
            return self.sinusoid.sample(rng, num_tasks, cfg.num_shots, num_query, self.device, self.dtype)
        source = self.train if split == "train" else self.test
        return source.sample(rng, num_tasks, cfg.num_ways, cfg.num_shots, num_query)


# ---------------------------------------------------------------------------- adaptation

def expand_params(params: Params, num_tasks: int) -> Params:
    """θ with a leading task axis (a view; gradients flow back and sum into θ)."""
    return {n: p.unsqueeze(0).expand(num_tasks, *p.shape) for n, p in params.items()}


def adapt_to_support(model: nn.Module, params: Params, step_sizes, batch: SupportQueryBatch, cfg: SupervisedConfig,
                     num_steps: int, first_order: bool, batched: bool,
                     per_task_params: bool = False) -> list[Params] | Params:
    """θ'_i for every task i of ``batch``: ``num_steps`` gradient steps on its support set,
    θ_{j+1} = θ_j − α ∇L_{S_i}(θ_j) from θ_0 = θ; a task-batched dict (``batched``) or a list of dicts.

    With ``batched`` the shared θ gets a task axis first, unless ``per_task_params`` says
    ``params`` already carries one (continuing an adaptation)."""
    loss = task_loss(cfg)
    xs, ys = batch[0], batch[1]
    if batched:
        def support_loss(p):  # Σ_i L_{S_i}: its gradient wrt task i's slice is ∇L_{S_i}
            pred = forward(model, p, xs)
            return ((pred - ys) ** 2).mean(dim=(-2, -1)).sum()
        start = params if per_task_params else expand_params(params, len(xs))
        return adapt(support_loss, start, num_steps, step_sizes, first_order)
    return [adapt(lambda p, x=x, y=y: loss(forward(model, p, x), y), params, num_steps, step_sizes, first_order)
            for x, y in zip(xs, ys)]


def query_scores(model: nn.Module, fast_params, batch: SupportQueryBatch, cfg: SupervisedConfig,
                 batched: bool) -> tuple[Tensor, Tensor | None]:
    """Per-task query losses L_{Q_i}(θ'_i) and accuracies (classification), shape (B,)."""
    xq, yq = batch[2], batch[3]
    if batched:
        pred = forward(model, fast_params, xq)
        return ((pred - yq) ** 2).mean(dim=(-2, -1)), None
    losses, accs = [], []
    loss = task_loss(cfg)
    for fp, x, y in zip(fast_params, xq, yq):
        out = forward(model, fp, x)
        losses.append(loss(out, y))
        if cfg.classification:
            accs.append((out.argmax(-1) == y).float().mean())
    return torch.stack(losses), (torch.stack(accs).detach() if accs else None)


# ---------------------------------------------------------------------------- the meta-update

def _all_finite(tensors) -> bool:
    return all(t is None or bool(torch.isfinite(t).all()) for t in tensors)


def meta_update(model: nn.Module, params: Params, step_sizes, optimizer: torch.optim.Optimizer,
                batch: SupportQueryBatch, cfg: SupervisedConfig) -> dict[str, float]:
    """One meta-update on ``batch``; returns ``query_loss`` (and ``query_accuracy``), or
    ``skipped=1`` with θ untouched when a loss or gradient is not finite."""
    optimizer.zero_grad(set_to_none=True)
    batched = batched_tasks(cfg)
    learned = [p for group in optimizer.param_groups for p in group["params"]]
    num_tasks = len(batch[0])
    try:
        if cfg.algorithm == "reptile":
            fast = adapt_to_support(model, params, step_sizes, batch, cfg, cfg.inner_steps, True, batched)
            with torch.no_grad():
                losses, accs = query_scores(model, fast, batch, cfg, batched)
            fast_list = [{n: v[i] for n, v in fast.items()} for i in range(num_tasks)] if batched else fast
            grads = reptile_gradient(params, fast_list)
            for name, p in params.items():
                p.grad = grads[name]
        elif batched:
            fast = adapt_to_support(model, params, step_sizes, batch, cfg, cfg.inner_steps, cfg.first_order, True)
            losses, accs = query_scores(model, fast, batch, cfg, True)
            if torch.isfinite(losses).all():
                losses.mean().backward()
            losses = losses.detach()
        else:  # one task at a time; each backward frees that task's graph
            loss_list, acc_list = [], []
            for i in range(num_tasks):
                task = tuple(t[i : i + 1] for t in batch)
                fast = adapt_to_support(model, params, step_sizes, task, cfg, cfg.inner_steps, cfg.first_order, False)
                loss_i, acc_i = query_scores(model, fast, task, cfg, False)
                if not torch.isfinite(loss_i).all():
                    loss_list.append(loss_i.detach())
                    break
                (loss_i.sum() / num_tasks).backward()
                loss_list.append(loss_i.detach())
                if acc_i is not None:
                    acc_list.append(acc_i)
            losses = torch.cat(loss_list)
            accs = torch.cat(acc_list) if acc_list else None
    except FloatingPointError as exc:
        return _skip(optimizer, f"inner loss not finite ({exc})")
    query_loss = float(losses.mean())
    if not math.isfinite(query_loss):
        return _skip(optimizer, f"query loss is {query_loss}")
    if not _all_finite(p.grad for p in learned):
        return _skip(optimizer, "meta-gradient is not finite")
    optimizer.step()
    out = {"query_loss": query_loss, "skipped": 0}
    if accs is not None:
        out["query_accuracy"] = float(accs.mean())
    return out


def _skip(optimizer: torch.optim.Optimizer, reason: str) -> dict[str, float]:
    optimizer.zero_grad(set_to_none=True)
    warnings.warn(f"skipping meta-update: {reason}; parameters unchanged", RuntimeWarning, stacklevel=3)
    return {"query_loss": float("nan"), "skipped": 1}


def make_learner(cfg: SupervisedConfig, device) -> tuple[nn.Module, Params, object, torch.optim.Optimizer]:
    """(model, θ, α (float or Meta-SGD dict), meta-optimizer) on ``device``."""
    model = build_model(cfg).to(device)
    params = named_params(model)
    step_sizes = meta_sgd_step_sizes(params, cfg.inner_step_size) if cfg.meta_sgd else cfg.inner_step_size
    learned = list(params.values()) + (list(step_sizes.values()) if cfg.meta_sgd else [])
    if cfg.meta_optimizer == "adam":
        optimizer = torch.optim.Adam(learned, lr=cfg.meta_lr)
    else:
        optimizer = torch.optim.SGD(learned, lr=cfg.meta_lr)
    return model, params, step_sizes, optimizer
