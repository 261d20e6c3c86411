"""Sweeps: a grid of model parameters × algorithms × seeds on Ray Tune (the command: :mod:`agents.cli.sweep`)."""
