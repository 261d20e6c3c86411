"""Pytest configuration: make the helpers module importable and keep Hypothesis quick and deterministic."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Ray's clusters use token authentication: a local ray.init turns it on, and so does a head started where
# ~/.ray/auth_token exists, but a process given a cluster's address sends the token only if RAY_AUTH_MODE says so
# before Ray is first imported. The tests start local sessions and a head of their own; one mode for all of them.
os.environ["RAY_AUTH_MODE"] = "token"

settings.register_profile(
    "mm_env",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("mm_env")


@pytest.fixture(scope="module")
def one_torch_thread():
    """As the main job runs (--torch-threads 1): small networks only lose from more threads, above all on a busy CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
