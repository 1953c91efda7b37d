"""Meta-reinforcement learning with MAML (Finn, Abbeel & Levine, 2017), read in the order of one meta-iteration:

* :mod:`~rlmaml.rl.config`: :class:`TrainConfig`, every key of ``rlmaml train``;
* :mod:`~rlmaml.rl.components`: the env and the policy a config describes;
* :mod:`~rlmaml.rl.policies`: the :class:`~rlmaml.rl.policies.Policy` protocol and the MLP policies;
* :mod:`~rlmaml.rl.rollout`, :mod:`~rlmaml.rl.episodes`, :mod:`~rlmaml.rl.returns`, :mod:`~rlmaml.rl.baseline`:
  batched episodes, discounted returns, GAE and the linear feature baseline;
* :mod:`~rlmaml.rl.sampling`: the :class:`~rlmaml.rl.sampling.Sampler` protocol and its registry; the local sampler
  (θ → episodes → inner step → episodes of θ');
* :mod:`~rlmaml.rl.objectives`: task batches, inner losses, the surrogate, the KL and the adaptation's Jacobian;
* :mod:`~rlmaml.rl.algos`: the meta-optimizers (TRPO, Adam) and their registry;
* :mod:`~rlmaml.rl.trainer`: the training loop, checkpoints and exact resume;
* :mod:`~rlmaml.rl.evaluation`: held-out tasks, adaptation returns and the paper's comparison methods.
"""
