"""The main job from a checkout: ``python train.py [options]`` is ``mm-env-train`` (see :mod:`agents.cli.train`)."""

from agents.cli.train import command, main

__all__ = ["command", "main"]  # main(argv) for Python callers; command() is the process's own command

if __name__ == "__main__":
    command()
