"""Task-parallel meta-training and evaluation on Ray (``sampler=ray``; ``pip install 'rlmaml[ray]'``).

A meta-batch's N tasks (or their parts, ``task_split``) are split into S = ``num_workers`` shards
(:func:`rlmaml.rl.parts.assign_parts`). Worker s (a Ray actor, :class:`ShardWorker`) owns a batched engine for its
rows, a copy of the policy, and the episodes of its rows with their baselines, advantages and inner adaptation;
the episodes never leave it, and the per-task sums of a task cut into parts on several workers go through the
driver (shard programs, :mod:`rlmaml.rl.parts`). The driver holds θ
and runs conjugate gradient and the line search on θ-sized vectors, asking every worker for its share of each
term of the TRPO meta-step (:class:`rlmaml.rl.algos.trpo.ShardTerms`):

    S = Σ_s S_s,   g = Σ_s J_sᵀ∇S_s,   F v = Σ_s (F v)_s,   (S, KL)(θ_candidate) = Σ_s (S_s, KL_s)

summed in shard order, so the result does not depend on which worker answers first. Each worker acts as its rows
of the whole batch would (it replays the reset draws of the whole batch's other copies and draws the whole batch's
action noise, keeping its rows), and ``sampler=local num_workers=S`` does the same arithmetic in one process: the
two give the same numbers, bit for bit. What travels per meta-batch: θ, a few per-task statistics of the episodes,
one θ-sized vector per worker and product, and, for tasks cut into parts, θ-sized shares and totals per task.
"""

from __future__ import annotations

from .ray_sampler import RaySampler, ShardWorker, require_ray, start_local_cluster

__all__ = ["RaySampler", "ShardWorker", "require_ray", "start_local_cluster"]
