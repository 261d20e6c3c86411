"""How policies are judged.

Common-random-number rollouts, exact values, the standard baselines and their tuning, the tables, the competing
market makers' judgement, and the figures.
"""
