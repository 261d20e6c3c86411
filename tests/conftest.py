"""Pytest configuration: make the helpers module importable and keep Hypothesis quick and deterministic."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "mm_env",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("mm_env")
