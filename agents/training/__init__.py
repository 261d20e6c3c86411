"""Training a learner through one pipeline for every market family.

Settings and hyperparameters, the families, the SB3 algorithm, callbacks, TensorBoard, signals, and the pipeline
itself (:mod:`agents.training.experiment`). Importing this package imports nothing heavy (the command line installs
its signal handlers before torch loads).
"""
