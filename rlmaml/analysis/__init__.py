"""Reading what runs left behind: tables of evaluations and training progress, Ant terminations, supervised
summaries, and the results manifest with the README's at-a-glance table generated from it.

Only numpy and yaml: nothing here imports the training code (``rlmaml.rl``) or the plotting code, so a table
can be rebuilt from the files of ``results/`` alone. ``rlmaml report`` (``rlmaml/cli/report.py``) is the command
line over these modules.

==================  ==========================================================================================
module              what it makes
==================  ==========================================================================================
``tables``          markdown table of an RL ``eval.json`` (mean ± 95% CI per method and step, paper numbers),
                    goal-distance lines for goal-position tasks
``progress``        block means of a run's training returns, its totals and its wall time
``terminations``    why Ant episodes end before the horizon, per adaptation phase
``supervised``      the README of a supervised run from its eval.json, metrics.jsonl and config.yaml
``manifest``        ``results/manifest.yaml``: loading, checking against the run folders, the at-a-glance
                    tables and their place in README.md
==================  ==========================================================================================
"""
