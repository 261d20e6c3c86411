"""The main job from a checkout: ``python train.py [options]`` is ``mm-env-train`` (see :mod:`agents.cli.train`)."""

import sys

from agents.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
