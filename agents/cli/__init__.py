"""The commands: every ``main()`` (``mm-env-train``, ``mm-env-sweep``, ``python -m agents.cli.evaluate``, …)."""
