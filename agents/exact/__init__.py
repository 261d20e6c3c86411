"""The exact answers.

The one-MM optimum and exact policy evaluation (:mod:`agents.exact.dp`), and the two-MM game
(:mod:`agents.exact.game`): equilibrium, cartel, best responses and their certificates.
"""
