"""Few-shot supervised MAML on the shared functional core (Finn et al., 2017, Sec. 5).

* :mod:`.tasks` — sinusoid regression and Omniglot N-way K-shot task distributions
* :mod:`.omniglot` — Omniglot loading (npz, zip, folders), the 28×28 cache and the 1200/423 split
* :mod:`.models` — the 40-40 ReLU MLP and the conv4 network (BatchNorm, stride-2 down-sampling)
* :mod:`.experiment` — config, MAML / FOMAML / Meta-SGD / Reptile meta-update
* :mod:`.train` — the training loop behind ``rlmaml supervised`` (checkpoints, exact resume)
* :mod:`.evaluate` — evaluation on 600 held-out tasks (mean, 95% CI), learning curves

Its command line is :mod:`rlmaml.cli.supervised`, its benchmark :mod:`rlmaml.bench.supervised`.
"""
