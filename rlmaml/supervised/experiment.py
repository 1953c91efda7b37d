"""The supervised few-shot experiment: config, model/task construction and the meta-update.

MAML (Finn et al., 2017, Algorithm 2). For a meta-batch of tasks T_i with support set S_i
and query set Q_i:

    θ'_i = θ − α ∇_θ L_{S_i}(θ)            (k inner steps, ``inner_steps``)
    θ   ← θ − β ∇_θ (1/B) Σ_i L_{Q_i}(θ'_i)  (Adam with learning rate β = ``meta_lr``)

``first_order`` drops the second-order term (FOMAML), ``meta_sgd`` learns a per-parameter
α alongside θ (Meta-SGD), and ``algorithm=reptile`` replaces the meta-gradient with
g = θ − (1/B) Σ_i θ'_i (Nichol et al., 2018), fed to the same optimizer.

Two engines compute the same meta-gradient (``engine``): ``batched`` (the default) runs the
tasks of the meta-batch through each layer together, with a leading task axis on the adapted
parameters (the MLP as a batched matmul, conv4 as grouped convolutions, ``groups = tasks``, with
batch norm over each task's own batch statistics), in groups of :func:`task_chunk` tasks whose
gradients add up; ``loop`` adapts one task at a time and frees its graph before the next (the
reference).

MAML++ (Antoniou, Edwards & Storkey, 2019), each option off by default:

* ``multi_step_loss``: the meta-objective Σ_{k=1..S} v_k(e) (1/B) Σ_i L_{Q_i}(θ_{i,k}) with the
  weights of :func:`multi_step_weights` (annealed towards the last step over ``msl_epochs``);
* ``lslr``: learned step sizes α_{l,j}, one per parameter tensor l and inner step j;
* ``per_step_bn``: batch-norm γ, β per inner step j (meta-learned, not adapted in the inner
  loop); statistics are each forward's own batch statistics, so they are per step and per task;
* ``first_order_epochs``: first-order meta-gradients while e < ``first_order_epochs``;
* ``meta_lr_schedule=cosine``: β_t = β_min + ½(β − β_min)(1 + cos(π t / T)), T = ``cosine_iterations``
  (0: ``num_iterations``).

Epochs e = ⌊t / ``epoch_iterations``⌋ count meta-iterations t (MAML++: 500 per epoch).

A meta-batch whose query loss (or any gradient) is not finite is skipped: θ is left
untouched and a ``RuntimeWarning`` is issued.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..config import require
from ..core import forward, inner_update, meta_sgd_step_sizes, named_params, reptile_gradient
from ..core.params import Params
from .models import Conv4, SinusoidMLP
from .tasks import OmniglotTasks, SinusoidTasks, SupportQueryBatch


@dataclass
class SupervisedConfig:
    """Every key of a supervised run (YAML presets: sinusoid, omniglot, omniglot-20way, omniglot-mamlpp)."""

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
    # engine: batched (tasks through each layer together, task_chunk at a time), loop (one task at a time)
    engine: Literal["batched", "loop"] = "batched"
    task_chunk: int = 0  # tasks per batched group; 0: all on CUDA and for the MLP, ~256 images per group on CPU
    # MAML++ (Antoniou et al., 2019); every option off by default
    multi_step_loss: bool = False
    msl_epochs: int = 10
    lslr: bool = False
    per_step_bn: bool = False
    first_order_epochs: int = 0
    meta_lr_schedule: Literal["constant", "cosine"] = "constant"
    min_meta_lr: float = 1e-5
    cosine_iterations: int = 0  # T of the cosine schedule; 0: num_iterations
    epoch_iterations: int = 500
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
        require(0 <= self.min_meta_lr <= self.meta_lr, "min_meta_lr", f"in [0, meta_lr={self.meta_lr}]",
                self.min_meta_lr)
        require(self.task_chunk >= 0, "task_chunk", "an integer >= 0 (0: automatic)", self.task_chunk)
        require(self.cosine_iterations >= 0, "cosine_iterations", "an integer >= 0 (0: num_iterations)",
                self.cosine_iterations)
        require(self.epoch_iterations > 0, "epoch_iterations", "a positive integer", self.epoch_iterations)
        require(self.msl_epochs > 0, "msl_epochs", "a positive integer", self.msl_epochs)
        require(self.first_order_epochs >= 0, "first_order_epochs", "an integer >= 0", self.first_order_epochs)
        require(not (self.lslr and self.meta_sgd), "lslr", "false with meta_sgd=true (one learned α at a time)",
                self.lslr)
        require(not (self.per_step_bn and self.task != "omniglot"), "per_step_bn",
                "false for the sinusoid MLP (it has no batch norm)", self.per_step_bn)
        if self.algorithm == "reptile":
            for key in ("multi_step_loss", "lslr", "per_step_bn"):
                require(not getattr(self, key), key, "false with algorithm=reptile (no meta-gradient)",
                        getattr(self, key))
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
    """Whether ``cfg`` runs on the task-batched engine (``engine``)."""
    return cfg.engine == "batched"


CPU_IMAGES_PER_GROUP = 256


def task_chunk(cfg: SupervisedConfig, num_tasks: int) -> int:
    """Tasks per group of the batched engine: ``task_chunk``, or when 0 all of them (the MLP, CUDA) or,
    for conv4 on the CPU, ⌊256 / images per task⌋ (at least 1): 8 tasks for 5-way 1-shot with 5 queries,
    2 for 20-way. Larger groups leave the CPU caches and run slower than the per-task loop
    (docs/supervised.md)."""
    if cfg.task_chunk:
        return min(cfg.task_chunk, num_tasks)
    if not cfg.classification or not cfg.device.startswith("cpu"):
        return num_tasks
    images = cfg.num_ways * (cfg.num_shots + cfg.num_query)
    return max(1, min(num_tasks, CPU_IMAGES_PER_GROUP // images))


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

def batch_norm_names(model: nn.Module) -> list[str]:
    """Names of the batch-norm γ and β of ``model``."""
    return [f"{m}.{p}" for m, module in model.named_modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)
            for p in ("weight", "bias")]


def adapted_names(model: nn.Module, params: Params, cfg: SupervisedConfig) -> list[str]:
    """The parameters the inner loop adapts: all of θ, less the per-step batch-norm tables (``per_step_bn``)."""
    if not cfg.per_step_bn:
        return list(params)
    frozen = set(batch_norm_names(model))
    return [n for n in params if n not in frozen]


def at_step(model: nn.Module, params: Params, fast: Params, step: int, cfg: SupervisedConfig) -> Params:
    """The parameters of the forward pass with inner-step index ``step``: ``fast`` and, with
    ``per_step_bn``, the batch-norm γ_j, β_j of row j = min(step, S − 1) of θ's tables."""
    if not cfg.per_step_bn:
        return fast
    j = min(step, cfg.inner_steps - 1)
    return {**fast, **{n: params[n][j] for n in batch_norm_names(model)}}


def step_size_at(step_sizes, step: int, cfg: SupervisedConfig):
    """α for inner step ``step``: the float, the Meta-SGD dict, or (``lslr``) α_{l,j} with
    j = min(step, S − 1) for every adapted tensor l."""
    if cfg.lslr and isinstance(step_sizes, Mapping):
        return {n: a[min(step, len(a) - 1)] for n, a in step_sizes.items()}
    return step_sizes


def expand_params(params: Params, num_tasks: int) -> Params:
    """θ with a leading task axis (a view; gradients flow back and sum into θ)."""
    return {n: p.unsqueeze(0).expand(num_tasks, *p.shape) for n, p in params.items()}


def initial_fast(model: nn.Module, params: Params, cfg: SupervisedConfig, num_tasks: int,
                 batched: bool) -> Params | list[Params]:
    """θ_0 of every task: the adapted part of θ, task-expanded (``batched``) or one dict per task."""
    names = adapted_names(model, params, cfg)
    start = {n: params[n] for n in names}
    return expand_params(start, num_tasks) if batched else [dict(start) for _ in range(num_tasks)]


def task_losses(cfg: SupervisedConfig, pred: Tensor, y: Tensor, batched: bool) -> Tensor:
    """L_i per task: mean squared error or cross-entropy over the task's examples; shape (B,) when
    ``batched`` (pred (B, n, ·)), a scalar for one task."""
    if not batched:
        return task_loss(cfg)(pred, y)
    if cfg.classification:
        flat = F.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1), reduction="none")
        return flat.view(y.shape).mean(-1)
    return ((pred - y) ** 2).mean(dim=(-2, -1))


def adapt_trajectory(model: nn.Module, params: Params, step_sizes, xs: Tensor, ys: Tensor, cfg: SupervisedConfig,
                     fast: Params, num_steps: int, first_order: bool, batched: bool, start_step: int = 0) -> list[Params]:
    """[θ_{s+1}, …, θ_{s+k}] from θ_s = ``fast`` (s = ``start_step``, k = ``num_steps``):

        θ_{j+1} = θ_j − α_j ⊙ ∇_{θ_j} L_S(θ_j)

    (:func:`rlmaml.core.inner_update`), L_S evaluated with the batch-norm row of step j
    (:func:`at_step`) and α_j from :func:`step_size_at`. Batched, L_S = Σ_i L_{S_i}, whose gradient
    with respect to task i's slice of θ_j is ∇L_{S_i}: one backward pass adapts every task."""
    fast = {n: (p if p.requires_grad else p.detach().requires_grad_()) for n, p in fast.items()}
    trajectory = []
    for j in range(start_step, start_step + num_steps):
        def support_loss(p, j=j):
            losses = task_losses(cfg, forward(model, at_step(model, params, p, j, cfg), xs), ys, batched)
            return losses.sum() if batched else losses
        fast = inner_update(support_loss, fast, step_size_at(step_sizes, j, cfg), first_order=first_order)
        trajectory.append(fast)
    return trajectory


def adapt_to_support(model: nn.Module, params: Params, step_sizes, batch: SupportQueryBatch, cfg: SupervisedConfig,
                     num_steps: int, first_order: bool, batched: bool,
                     per_task_params: bool = False, start_step: int = 0) -> list[Params] | Params:
    """θ'_i for every task i of ``batch``: ``num_steps`` gradient steps on its support set,
    θ_{j+1} = θ_j − α_j ∇L_{S_i}(θ_j) from θ_0 = θ; a task-batched dict (``batched``) or a list of dicts.

    With ``per_task_params`` ``params`` are already adapted (a task-batched dict, or one dict per
    task, holding the batch-norm tables too under ``per_step_bn``), and the steps continue from
    index ``start_step``."""
    xs, ys = batch[0], batch[1]
    starts = params if per_task_params else initial_fast(model, params, cfg, len(xs), batched)
    if batched:
        trajectory = adapt_trajectory(model, params, step_sizes, xs, ys, cfg, starts, num_steps, first_order, True,
                                      start_step)
        return trajectory[-1] if trajectory else starts
    out = []
    for start, x, y in zip(starts, xs, ys):
        theta = start if per_task_params else params
        trajectory = adapt_trajectory(model, theta, step_sizes, x, y, cfg, start, num_steps, first_order, False,
                                      start_step)
        out.append(trajectory[-1] if trajectory else start)
    return out


def query_scores(model: nn.Module, fast_params, batch: SupportQueryBatch, cfg: SupervisedConfig,
                 batched: bool, theta: Params | list[Params] | None = None, steps: int = 1) -> tuple[Tensor, Tensor | None]:
    """Per-task query losses L_{Q_i}(θ'_i) and accuracies (classification), shape (B,).

    With ``per_step_bn`` the batch-norm rows are those of step max(``steps`` − 1, 0) from ``theta``
    (θ, or one θ per task; default: ``fast_params`` themselves carry the tables)."""
    xq, yq = batch[2], batch[3]
    row = max(steps - 1, 0)
    if batched:
        p = at_step(model, fast_params if theta is None else theta, fast_params, row, cfg)
        pred = forward(model, p, xq)
        losses = task_losses(cfg, pred, yq, True)
        accs = (pred.argmax(-1) == yq).float().mean(-1).detach() if cfg.classification else None
        return losses, accs
    losses, accs = [], []
    for i, (fp, x, y) in enumerate(zip(fast_params, xq, yq)):
        th = fp if theta is None else (theta[i] if isinstance(theta, list) else theta)
        out = forward(model, at_step(model, th, fp, row, cfg), x)
        losses.append(task_losses(cfg, out, y, False))
        if cfg.classification:
            accs.append((out.argmax(-1) == y).float().mean())
    return torch.stack(losses), (torch.stack(accs).detach() if accs else None)


# ---------------------------------------------------------------------------- MAML++ schedules

def epoch(cfg: SupervisedConfig, iteration: int) -> int:
    """e = ⌊t / epoch_iterations⌋."""
    return iteration // cfg.epoch_iterations


def multi_step_weights(cfg: SupervisedConfig, iteration: int) -> np.ndarray | None:
    """The multi-step loss weights v(e) over the S inner steps (MAML++'s annealing), or None for the
    last step's loss alone (``multi_step_loss`` off, S = 1, or e ≥ ``msl_epochs``):

        v_k = max(1/S − e d, 0.03/S)                       k < S,   d = 1 / (S · msl_epochs)
        v_S = min(1/S + e (S − 1) d, 1 − (S − 1) 0.03/S)
    """
    steps, e = cfg.inner_steps, epoch(cfg, iteration)
    if not cfg.multi_step_loss or steps == 1 or e >= cfg.msl_epochs:
        return None
    decay, floor = 1.0 / steps / cfg.msl_epochs, 0.03 / steps
    weights = np.full(steps, 1.0 / steps)
    weights[:-1] = np.maximum(weights[:-1] - e * decay, floor)
    weights[-1] = min(weights[-1] + e * (steps - 1) * decay, 1.0 - (steps - 1) * floor)
    return weights


def first_order_at(cfg: SupervisedConfig, iteration: int) -> bool:
    """First-order meta-gradients: ``first_order``, or while e < ``first_order_epochs``."""
    return cfg.first_order or epoch(cfg, iteration) < cfg.first_order_epochs


def meta_lr_at(cfg: SupervisedConfig, iteration: int) -> float:
    """β_t: ``meta_lr``, or with ``meta_lr_schedule=cosine`` β_min + ½(β − β_min)(1 + cos(π min(t, T) / T)),
    T = ``cosine_iterations`` or, when 0, ``num_iterations`` (so a resume that raises ``num_iterations``
    stretches the schedule unless ``cosine_iterations`` fixes it)."""
    if cfg.meta_lr_schedule == "constant":
        return cfg.meta_lr
    period = cfg.cosine_iterations or cfg.num_iterations
    t = min(iteration, period) / period
    return cfg.min_meta_lr + 0.5 * (cfg.meta_lr - cfg.min_meta_lr) * (1.0 + math.cos(math.pi * t))


# ---------------------------------------------------------------------------- the meta-update

def _all_finite(tensors) -> bool:
    return all(t is None or bool(torch.isfinite(t).all()) for t in tensors)


def meta_objective(model: nn.Module, params: Params, step_sizes, batch: SupportQueryBatch, cfg: SupervisedConfig,
                   first_order: bool, weights: np.ndarray | None, batched: bool,
                   num_tasks: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """(J, per-task last-step query losses, accuracies) for the tasks of ``batch``, with

        J = (1/B) Σ_i L_{Q_i}(θ_{i,S})                      (``weights`` None)
        J = (1/B) Σ_i Σ_{k=1..S} v_k L_{Q_i}(θ_{i,k})          (multi-step loss)

    B = ``num_tasks``, the meta-batch's size (the engines call this on one group of tasks at a
    time, one task for the loop, and the gradients add up)."""
    xs, ys = batch[0], batch[1]
    num = cfg.inner_steps
    if batched:
        trajectory = adapt_trajectory(model, params, step_sizes, xs, ys, cfg,
                                      initial_fast(model, params, cfg, len(xs), True), num, first_order, True)
        steps = range(num) if weights is not None else [num - 1]
        scored = {k: query_scores(model, trajectory[k], batch, cfg, True, params, k + 1) for k in steps}
    else:
        trajectory = adapt_trajectory(model, params, step_sizes, xs[0], ys[0], cfg,
                                      initial_fast(model, params, cfg, 1, False)[0], num, first_order, False)
        steps = range(num) if weights is not None else [num - 1]
        scored = {k: query_scores(model, [trajectory[k]], batch, cfg, False, params, k + 1) for k in steps}
    losses, accs = scored[num - 1]

    def total(task_losses):  # (1/B) Σ_i over the tasks held here
        return task_losses.mean() if len(task_losses) == num_tasks else task_losses.sum() / num_tasks

    if weights is None:
        return total(losses), losses, accs
    return sum(float(weights[k]) * total(scored[k][0]) for k in steps), losses, accs


def meta_update(model: nn.Module, params: Params, step_sizes, optimizer: torch.optim.Optimizer,
                batch: SupportQueryBatch, cfg: SupervisedConfig, iteration: int = 0) -> dict[str, float]:
    """One meta-update on ``batch`` at meta-iteration ``iteration`` (which sets the MAML++
    schedules); returns ``query_loss`` (and ``query_accuracy``) after the last inner step, or
    ``skipped=1`` with θ untouched when a loss or gradient is not finite."""
    optimizer.zero_grad(set_to_none=True)
    batched = batched_tasks(cfg)
    learned = [p for group in optimizer.param_groups for p in group["params"]]
    num_tasks = len(batch[0])
    if cfg.meta_lr_schedule != "constant":
        for group in optimizer.param_groups:
            group["lr"] = meta_lr_at(cfg, iteration)
    first_order, weights = first_order_at(cfg, iteration), multi_step_weights(cfg, iteration)
    try:
        if cfg.algorithm == "reptile":
            fast = adapt_to_support(model, params, step_sizes, batch, cfg, cfg.inner_steps, True, batched)
            with torch.no_grad():
                losses, accs = query_scores(model, fast, batch, cfg, batched)
            fast_list = [{n: v[i] for n, v in fast.items()} for i in range(num_tasks)] if batched else fast
            grads = reptile_gradient(params, fast_list)
            for name, p in params.items():
                p.grad = grads[name]
        else:  # groups of tasks (one task each for the loop); each backward frees that group's graph
            group = task_chunk(cfg, num_tasks) if batched else 1
            loss_list, acc_list = [], []
            for start in range(0, num_tasks, group):
                tasks = tuple(t[start : start + group] for t in batch)
                objective, loss_g, acc_g = meta_objective(model, params, step_sizes, tasks, cfg, first_order, weights,
                                                          batched, num_tasks)
                loss_list.append(loss_g.detach())
                if not torch.isfinite(loss_g).all():
                    break
                objective.backward()
                if acc_g is not None:
                    acc_list.append(acc_g)
            losses = torch.cat([loss.reshape(-1) for loss in loss_list])
            accs = torch.cat([a.reshape(-1) for a in acc_list]) if acc_list else None
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
    """(model, θ, α, meta-optimizer) on ``device``.

    α is ``inner_step_size`` (a float), Meta-SGD's per-parameter tensors shaped like θ, or (``lslr``)
    one vector of S step sizes per adapted tensor. With ``per_step_bn`` θ's batch-norm γ and β are
    tables of S rows (row j used at inner step j), initialised to the module's γ = 1, β = 0."""
    model = build_model(cfg).to(device)
    params = named_params(model)
    if cfg.per_step_bn:
        for name in batch_norm_names(model):
            params[name] = params[name].detach().unsqueeze(0).repeat(cfg.inner_steps, 1).requires_grad_()
    if cfg.meta_sgd:
        step_sizes = meta_sgd_step_sizes(params, cfg.inner_step_size)
    elif cfg.lslr:
        step_sizes = {n: torch.full((cfg.inner_steps,), float(cfg.inner_step_size), device=params[n].device,
                                    dtype=params[n].dtype, requires_grad=True)
                      for n in adapted_names(model, params, cfg)}
    else:
        step_sizes = cfg.inner_step_size
    learned = list(params.values()) + (list(step_sizes.values()) if isinstance(step_sizes, dict) else [])
    if cfg.meta_optimizer == "adam":
        optimizer = torch.optim.Adam(learned, lr=cfg.meta_lr)
    else:
        optimizer = torch.optim.SGD(learned, lr=cfg.meta_lr)
    return model, params, step_sizes, optimizer
