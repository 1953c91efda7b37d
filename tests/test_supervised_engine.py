"""The task-batched engine and the MAML++ options of the supervised mode.

* the batched conv4 (grouped convolutions, batch norm over each task's own statistics) against central
  finite differences in float64, 1 and 2 inner steps, second order, plain and with every MAML++ option;
* the batched engine against the per-task loop (loss, accuracy, meta-gradient), first and second order,
  for the sinusoid MLP and conv4;
* each MAML++ option against a hand computation: multi-step loss and its weights, LSLR's gradients,
  per-step batch norm's rows, derivative-order annealing, the cosine meta learning rate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rlmaml.config import ConfigError, load_config
from rlmaml.core import flatten, forward, unflatten
from rlmaml.supervised import experiment
from rlmaml.supervised.experiment import SupervisedConfig, TaskSource, make_learner, meta_update
from rlmaml.supervised.tasks import OmniglotTasks


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def conv_setup(dtype=torch.float64, num_tasks=2, seed=0, **overrides):
    """A real conv4 (28×28 inputs, four stride-2 blocks with batch norm, linear head), 4 filters, 5-way 1-shot."""
    cfg = load_config(SupervisedConfig, "omniglot", {"num_filters": 4, "meta_batch_size": num_tasks, "num_query": 2,
                                                     **overrides})
    images = np.random.default_rng(seed).integers(0, 256, (12, 20, 28, 28), dtype=np.uint8)
    batch = OmniglotTasks(images, np.arange(12), True, dtype=dtype).sample(np.random.default_rng(seed + 1),
                                                                            num_tasks, 5, 1, 2)
    return cfg, batch


def sinusoid_setup(dtype=torch.float64, **overrides):
    cfg = load_config(SupervisedConfig, "sinusoid", {"num_shots": 5, "num_query": 5, "meta_batch_size": 4,
                                                     "hidden_sizes": [8, 8], **overrides})
    return cfg, TaskSource(cfg, "cpu", dtype).sample(np.random.default_rng(0), 4)


def learned_tensors(params, step_sizes) -> list[torch.Tensor]:
    return list(params.values()) + (list(step_sizes.values()) if isinstance(step_sizes, dict) else [])


def meta_gradient(cfg, batch, engine, seed=0, iteration=0):
    """(metrics, meta-gradient over θ and a learned α) of one meta_update from the initial weights of ``seed``."""
    cfg = load_config(SupervisedConfig, None, {**cfg.__dict__, "engine": engine})
    torch.manual_seed(seed)
    model, params, step_sizes, _ = make_learner(cfg, "cpu")
    tensors = learned_tensors(params, step_sizes)
    metrics = meta_update(model, params, step_sizes, torch.optim.SGD(tensors, lr=0.0), batch, cfg, iteration)
    return metrics, torch.cat([t.grad.flatten() for t in tensors]), (model, params, step_sizes)


def objective_value(cfg, model, params, step_sizes, batch, iteration=0) -> float:
    """The meta-objective's value alone (loop engine; first-order gradients give the same values)."""
    weights = experiment.multi_step_weights(cfg, iteration)
    total = 0.0
    for i in range(len(batch[0])):
        task = tuple(t[i : i + 1] for t in batch)
        value = experiment.meta_objective(model, params, step_sizes, task, cfg, True, weights, False, len(batch[0]))[0]
        total += float(value.detach())
    return total


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# ---------------------------------------------------------------------------- batched conv4 vs finite differences

@pytest.mark.parametrize("options", [{"inner_steps": 1}, {"inner_steps": 2},
                                     {"inner_steps": 2, "lslr": True, "per_step_bn": True, "multi_step_loss": True}],
                         ids=["1-step", "2-steps", "2-steps-maml++"])
def test_batched_conv4_meta_gradient_matches_central_differences(float64, options):
    cfg, batch = conv_setup(engine="batched", num_filters=8, **options)  # 4 filters sit within 1e-6 of a ReLU kink
    _, grad, (model, params, step_sizes) = meta_gradient(cfg, batch, "batched")
    like = {f"p.{n}": t.detach() for n, t in params.items()}
    if isinstance(step_sizes, dict):
        like.update({f"a.{n}": a.detach() for n, a in step_sizes.items()})

    def value(vector):
        flat = unflatten(vector, like)
        theta = {n[2:]: t.clone().requires_grad_() for n, t in flat.items() if n.startswith("p.")}
        alpha = {n[2:]: t for n, t in flat.items() if n.startswith("a.")} or cfg.inner_step_size
        return objective_value(cfg, model, theta, alpha, batch)

    x0, g = flatten(like), torch.Generator().manual_seed(3)
    for _ in range(3):
        v = torch.randn(x0.numel(), generator=g)
        v /= v.norm()
        numeric = (value(x0 + 1e-6 * v) - value(x0 - 1e-6 * v)) / 2e-6
        assert float(grad @ v) == pytest.approx(numeric, rel=1e-6, abs=1e-10)


def test_batched_conv4_forward_is_the_per_task_module(float64):
    cfg, batch = conv_setup(num_tasks=3)
    model, params, _, _ = make_learner(cfg, "cpu")
    with torch.no_grad():
        for p in params.values():  # per-task weights, distinct batch-norm γ and β
            p.add_(0.1 * torch.randn_like(p))
    per_task = {n: torch.stack([p + 0.05 * i for i in range(3)]) for n, p in params.items()}
    batched = forward(model, per_task, batch[0])
    looped = torch.stack([forward(model, {n: p[i] for n, p in per_task.items()}, batch[0][i]) for i in range(3)])
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------- batched engine == per-task loop

@pytest.mark.parametrize("first_order", [False, True], ids=["second-order", "first-order"])
@pytest.mark.parametrize("task", ["sinusoid", "conv4"])
def test_batched_engine_equals_the_per_task_loop(float64, task, first_order):
    cfg, batch = (sinusoid_setup(inner_steps=2, inner_step_size=0.05, first_order=first_order) if task == "sinusoid"
                  else conv_setup(num_tasks=3, inner_steps=2, first_order=first_order))
    m_batched, g_batched, _ = meta_gradient(cfg, batch, "batched")
    m_loop, g_loop, _ = meta_gradient(cfg, batch, "loop")
    assert m_batched["query_loss"] == pytest.approx(m_loop["query_loss"], rel=1e-12)
    if task == "conv4":
        assert m_batched["query_accuracy"] == m_loop["query_accuracy"]
    assert relative_error(g_batched, g_loop) < 1e-10


def test_batched_engine_equals_the_loop_in_float32_with_every_maml_plus_plus_option():
    cfg, batch = conv_setup(dtype=torch.float32, num_tasks=3, inner_steps=2, lslr=True, per_step_bn=True,
                            multi_step_loss=True)
    m_batched, g_batched, _ = meta_gradient(cfg, batch, "batched")
    m_loop, g_loop, _ = meta_gradient(cfg, batch, "loop")
    assert m_batched["query_loss"] == pytest.approx(m_loop["query_loss"], rel=1e-5)
    assert m_batched["query_accuracy"] == m_loop["query_accuracy"]
    assert relative_error(g_batched, g_loop) < 1e-4


def test_batched_groups_of_tasks_equal_the_loop(float64):
    cfg, batch = conv_setup(num_tasks=3, inner_steps=2, task_chunk=2)  # groups of 2 and 1 tasks
    assert experiment.task_chunk(cfg, 3) == 2
    m_grouped, g_grouped, _ = meta_gradient(cfg, batch, "batched")
    m_loop, g_loop, _ = meta_gradient(cfg, batch, "loop")
    assert m_grouped["query_loss"] == pytest.approx(m_loop["query_loss"], rel=1e-12)
    assert m_grouped["query_accuracy"] == m_loop["query_accuracy"]
    assert relative_error(g_grouped, g_loop) < 1e-10


def test_automatic_task_chunk():
    assert experiment.task_chunk(load_config(SupervisedConfig, "sinusoid"), 25) == 25  # the MLP: all tasks
    assert experiment.task_chunk(load_config(SupervisedConfig, "omniglot"), 32) == 8  # 256 // (5 · 6) images
    assert experiment.task_chunk(load_config(SupervisedConfig, "omniglot-20way"), 16) == 2  # 256 // 120
    assert experiment.task_chunk(load_config(SupervisedConfig, "omniglot", {"task_chunk": 40}), 32) == 32
    cuda = SupervisedConfig(task="omniglot", device="cuda")  # not validated: no CUDA needed here
    assert experiment.task_chunk(cuda, 32) == 32
    assert not experiment.batched_tasks(load_config(SupervisedConfig, "omniglot", {"engine": "loop"}))


# ---------------------------------------------------------------------------- MAML++ against hand computation

def test_multi_step_weights_follow_the_annealing_by_hand():
    cfg = load_config(SupervisedConfig, "sinusoid", {"multi_step_loss": True, "inner_steps": 4, "msl_epochs": 10,
                                                     "epoch_iterations": 100})
    np.testing.assert_allclose(experiment.multi_step_weights(cfg, 0), [0.25] * 4)
    np.testing.assert_allclose(experiment.multi_step_weights(cfg, 99), [0.25] * 4)  # still epoch 0
    d = 1 / 4 / 10  # per-epoch decay
    np.testing.assert_allclose(experiment.multi_step_weights(cfg, 199), [0.25 - d] * 3 + [0.25 + 3 * d])
    np.testing.assert_allclose(experiment.multi_step_weights(cfg, 300), [0.25 - 3 * d] * 3 + [0.25 + 9 * d])
    np.testing.assert_allclose(experiment.multi_step_weights(cfg, 999), [0.25 - 9 * d] * 3 + [0.25 + 27 * d])
    assert experiment.multi_step_weights(cfg, 1000) is None  # from msl_epochs on: the last step alone
    long = load_config(SupervisedConfig, None, {**cfg.__dict__, "msl_epochs": 100})
    floor = 0.03 / 4  # non-final weights stop at 0.03 / S, the last at 1 − (S − 1) · 0.03 / S
    np.testing.assert_allclose(experiment.multi_step_weights(long, 9900), [floor] * 3 + [1 - 3 * floor])
    off = load_config(SupervisedConfig, "sinusoid", {"inner_steps": 4})
    assert experiment.multi_step_weights(off, 0) is None


def test_multi_step_loss_of_a_two_step_run_is_the_weighted_sum_by_hand(float64):
    cfg, batch = sinusoid_setup(inner_steps=2, inner_step_size=0.05, multi_step_loss=True, msl_epochs=4,
                                epoch_iterations=10)
    iteration = 25  # epoch 2 of 4: v = (1/2 − 2/8, 1/2 + 2/8)
    v = (0.5 - 2 / 8, 0.5 + 2 / 8)
    np.testing.assert_allclose(experiment.multi_step_weights(cfg, iteration), v)
    for engine in ("batched", "loop"):
        _, grad, (model, params, _) = meta_gradient(cfg, batch, engine, iteration=iteration)
        theta = {n: p.detach().clone().requires_grad_() for n, p in params.items()}
        total = 0.0
        for xs, ys, xq, yq in zip(*batch):  # θ1 = θ − α∇L_S(θ), θ2 = θ1 − α∇L_S(θ1); J = mean_i Σ_k v_k L_Q(θ_k)
            fast, task = theta, 0.0
            for k in range(2):
                g = torch.autograd.grad(F.mse_loss(forward(model, fast, xs), ys), list(fast.values()), create_graph=True)
                fast = {n: p - 0.05 * gi for (n, p), gi in zip(fast.items(), g)}
                task = task + v[k] * F.mse_loss(forward(model, fast, xq), yq)
            total = total + task / len(batch[0])
        by_hand = torch.cat([g.flatten() for g in torch.autograd.grad(total, list(theta.values()))])
        assert relative_error(grad, by_hand) < 1e-10, engine


def test_lslr_step_sizes_get_the_gradient_by_hand(float64):
    """One inner step: ∂J/∂α_l = −(1/B) Σ_i ∇_l L_{Q_i}(θ'_i) · ∇_l L_{S_i}(θ), for every tensor l."""
    cfg, batch = sinusoid_setup(inner_steps=1, inner_step_size=0.05, lslr=True)
    for engine in ("batched", "loop"):
        cfg_e = load_config(SupervisedConfig, None, {**cfg.__dict__, "engine": engine})
        torch.manual_seed(0)
        model, params, alpha, _ = make_learner(cfg_e, "cpu")
        assert all(a.shape == (1,) for a in alpha.values()) and set(alpha) == set(params)
        meta_update(model, params, alpha, torch.optim.SGD(learned_tensors(params, alpha), lr=0.0), batch, cfg_e)
        expected = {n: 0.0 for n in params}
        for xs, ys, xq, yq in zip(*batch):
            gs = dict(zip(params, torch.autograd.grad(F.mse_loss(forward(model, params, xs), ys), list(params.values()))))
            fast = {n: p - 0.05 * gs[n] for n, p in params.items()}
            gq = dict(zip(params, torch.autograd.grad(F.mse_loss(forward(model, fast, xq), yq), list(fast.values()))))
            for n in params:
                expected[n] -= float((gq[n] * gs[n]).sum()) / len(batch[0])
        for n, a in alpha.items():
            assert float(a.grad[0]) == pytest.approx(expected[n], rel=1e-9, abs=1e-14), (engine, n)
            assert a.grad[0] != 0


def test_lslr_uses_one_step_size_per_step(float64):
    cfg, batch = sinusoid_setup(inner_steps=3, lslr=True)
    torch.manual_seed(0)
    model, params, alpha, _ = make_learner(cfg, "cpu")
    with torch.no_grad():
        for a in alpha.values():
            a.copy_(torch.tensor([0.01, 0.02, 0.03]))
    fast = experiment.adapt_to_support(model, params, alpha, batch, cfg, 3, True, True)
    theta = {n: p.detach().unsqueeze(0).expand(4, *p.shape).requires_grad_() for n, p in params.items()}
    by_hand = theta
    for step in (0.01, 0.02, 0.03):  # the same steps with the step sizes written out
        loss = ((forward(model, by_hand, batch[0]) - batch[1]) ** 2).mean(dim=(-2, -1)).sum()
        g = torch.autograd.grad(loss, list(by_hand.values()))
        by_hand = {n: p - step * gi for (n, p), gi in zip(by_hand.items(), g)}
    for n in params:
        torch.testing.assert_close(fast[n], by_hand[n], rtol=1e-12, atol=1e-12)
    assert experiment.step_size_at(alpha, 7, cfg)[n] == 0.03  # beyond the trained steps: the last one


def test_per_step_bn_tables_and_rows(float64):
    cfg, batch = conv_setup(inner_steps=2, per_step_bn=True)
    _, _, (model, params, _) = meta_gradient(cfg, batch, "batched")
    names = experiment.batch_norm_names(model)
    assert names == [f"features.{i}.{p}" for i in (1, 4, 7, 10) for p in ("weight", "bias")]
    assert all(params[n].shape == (2, 4) for n in names)
    assert all(params[n].grad is not None and params[n].grad[j].abs().sum() > 0 for n in names for j in (0, 1))
    assert set(experiment.adapted_names(model, params, cfg)) == set(params) - set(names)
    # row j is the batch norm of inner step j: with row 1 set to row 0, the run equals plain MAML with frozen γ, β
    plain_cfg, _ = conv_setup(inner_steps=2)
    torch.manual_seed(0)
    plain_model, plain, _, _ = make_learner(plain_cfg, "cpu")
    table = {n: params[n].detach() for n in names}
    shared = {n: p.detach().clone().requires_grad_() for n, p in plain.items()}
    for n in names:
        table[n][1] = table[n][0] + 0.0
    fast = experiment.adapt_to_support(model, {**shared, **table}, cfg.inner_step_size, batch, cfg, 2, True, True)
    losses = experiment.query_scores(model, fast, batch, cfg, True, {**shared, **table}, 2)[0]
    frozen = {n: p for n, p in shared.items() if n not in names}
    fast_plain = {n: p.unsqueeze(0).expand(2, *p.shape) for n, p in frozen.items()}
    for _ in range(2):
        p = {**fast_plain, **{n: table[n][0] for n in names}}
        loss = experiment.task_losses(cfg, forward(plain_model, p, batch[0]), batch[1], True).sum()
        g = torch.autograd.grad(loss, list(fast_plain.values()))
        fast_plain = {n: v - cfg.inner_step_size * gi for (n, v), gi in zip(fast_plain.items(), g)}
    pred = forward(plain_model, {**fast_plain, **{n: table[n][0] for n in names}}, batch[2])
    torch.testing.assert_close(losses, experiment.task_losses(cfg, pred, batch[3], True), rtol=1e-12, atol=1e-12)


def test_derivative_order_annealing_is_first_order_then_second(float64):
    cfg, batch = conv_setup(inner_steps=2, first_order_epochs=2, epoch_iterations=5)
    assert [experiment.first_order_at(cfg, t) for t in (0, 9, 10)] == [True, True, False]
    fo_cfg, _ = conv_setup(inner_steps=2, first_order=True)
    so_cfg, _ = conv_setup(inner_steps=2)
    for engine in ("batched", "loop"):
        g_early = meta_gradient(cfg, batch, engine, iteration=9)[1]
        g_late = meta_gradient(cfg, batch, engine, iteration=10)[1]
        assert torch.equal(g_early, meta_gradient(fo_cfg, batch, engine)[1])
        assert torch.equal(g_late, meta_gradient(so_cfg, batch, engine)[1])
        assert relative_error(g_early, g_late) > 1e-3


def test_cosine_meta_learning_rate_values_and_optimizer():
    cfg = load_config(SupervisedConfig, "sinusoid", {"meta_lr_schedule": "cosine", "meta_lr": 1e-3,
                                                     "min_meta_lr": 1e-5, "num_iterations": 100})
    assert experiment.meta_lr_at(cfg, 0) == pytest.approx(1e-3)
    assert experiment.meta_lr_at(cfg, 50) == pytest.approx((1e-3 + 1e-5) / 2)
    assert experiment.meta_lr_at(cfg, 25) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi / 4)))
    assert experiment.meta_lr_at(cfg, 100) == pytest.approx(1e-5)
    constant = load_config(SupervisedConfig, "sinusoid", {"num_iterations": 100})
    assert experiment.meta_lr_at(constant, 50) == 1e-3
    fixed = load_config(SupervisedConfig, None, {**cfg.__dict__, "cosine_iterations": 50, "num_iterations": 500})
    assert experiment.meta_lr_at(fixed, 25) == pytest.approx((1e-3 + 1e-5) / 2)
    assert experiment.meta_lr_at(fixed, 400) == pytest.approx(1e-5)  # past T: β_min
    model, params, alpha, opt = make_learner(cfg, "cpu")
    batch = TaskSource(cfg, "cpu").sample(np.random.default_rng(0), 3)
    meta_update(model, params, alpha, opt, batch, cfg, iteration=25)
    assert opt.param_groups[0]["lr"] == experiment.meta_lr_at(cfg, 25)


def test_maml_plus_plus_preset_is_the_published_schedule():
    """omniglot-mamlpp: Antoniou et al.'s Omniglot 5-way 1-shot settings (150 epochs of 500 iterations, 16
    tasks, 5 steps from α₀ = 0.4, MSL over 15 epochs, first order for 80 epochs, cosine 1e-3 → 1e-5)."""
    cfg = load_config(SupervisedConfig, "omniglot-mamlpp")
    assert (cfg.num_ways, cfg.num_shots, cfg.meta_batch_size, cfg.inner_steps, cfg.inner_step_size) == (5, 1, 16, 5, 0.4)
    assert cfg.multi_step_loss and cfg.lslr and cfg.per_step_bn and cfg.meta_lr_schedule == "cosine"
    assert (cfg.msl_epochs, cfg.first_order_epochs, cfg.epoch_iterations) == (15, 80, 500)
    assert (cfg.num_iterations, cfg.meta_lr, cfg.min_meta_lr, cfg.eval_steps) == (75000, 1e-3, 1e-5, [0, 1, 5])
    assert experiment.first_order_at(cfg, 80 * 500 - 1) and not experiment.first_order_at(cfg, 80 * 500)
    assert experiment.meta_lr_at(cfg, 0) == 1e-3 and experiment.meta_lr_at(cfg, 75000) == pytest.approx(1e-5)
    assert experiment.multi_step_weights(cfg, 0).tolist() == [0.2] * 5
    assert experiment.multi_step_weights(cfg, 15 * 500 - 1) is not None
    assert experiment.multi_step_weights(cfg, 15 * 500) is None  # the last step's loss alone from epoch 15


def test_maml_plus_plus_keys_are_off_by_default_and_checked():
    for preset in ("sinusoid", "omniglot", "omniglot-20way"):
        cfg = load_config(SupervisedConfig, preset)
        assert not (cfg.multi_step_loss or cfg.lslr or cfg.per_step_bn or cfg.first_order_epochs)
        assert cfg.meta_lr_schedule == "constant" and cfg.engine == "batched" and cfg.task_chunk == 0
    for bad, key in ((["lslr=true", "meta_sgd=true"], "lslr"), (["per_step_bn=true"], "per_step_bn"),
                     (["algorithm=reptile", "multi_step_loss=true"], "multi_step_loss"),
                     (["min_meta_lr=0.1"], "min_meta_lr"), (["engine=vmap"], "engine"),
                     (["first_order_epochs=-1"], "first_order_epochs"), (["msl_epochs=0"], "msl_epochs"),
                     (["task_chunk=-1"], "task_chunk")):
        with pytest.raises(ConfigError, match=key) as err:
            load_config(SupervisedConfig, "sinusoid", bad)
        assert "\n" not in str(err.value)
