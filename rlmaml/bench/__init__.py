"""Side-by-side speed benchmarks, each printing one JSON object (``rlmaml bench <name>``).

A benchmark is a module with ``add_arguments(parser)`` and ``run(args) -> int``, named in
:data:`BENCHMARKS`; only the one chosen is imported.
"""

from __future__ import annotations

BENCHMARKS: dict[str, tuple[str, str]] = {
    "supervised": ("rlmaml.bench.supervised", "meta-batches per second of supervised MAML vs a plain per-task loop"),
    "rollouts": ("rlmaml.bench.rollouts", "rollout throughput: the batched engine vs Gymnasium's vector envs vs the physics limit"),
    "distributed": ("rlmaml.bench.distributed", "meta-batches on one process against Ray workers at equal total cores"),
    "scaling": ("rlmaml.bench.scaling", "a scaling model of task-parallel meta-batches from measured per-shard costs"),
    "kl-profile": ("rlmaml.bench.kl_profile", "measured KL along a TRPO meta-step against its quadratic model, at a run's checkpoint"),
    "meta-step": ("rlmaml.bench.meta_step", "time one MAML-TRPO meta-batch (sampling and meta-update) on a preset"),
}
"""name -> (module with ``add_arguments(parser)`` and ``run(args) -> int``, one line of help)."""

__all__ = ["BENCHMARKS"]
