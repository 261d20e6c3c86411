"""The agents that quote in the market of :mod:`mm_env`.

Policies, the exact answers, how they are judged, how a learner is trained, stored and swept, and the commands.

Packages, from the bottom layer up (checked by import-linter, see ``pyproject.toml``): :mod:`agents.exact` (the DP
and the game's exact tools), :mod:`agents.policies`, :mod:`agents.evaluation`, :mod:`agents.storage`,
:mod:`agents.training`, then :mod:`agents.sweep`, :mod:`agents.zoo` and :mod:`agents.reproduce`, and at the top
:mod:`agents.cli`, the commands.
"""

TRAIN_COMMAND = "mm-env-train"
"""The main job's console script (``python train.py`` in a checkout runs the same)."""
