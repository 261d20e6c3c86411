"""Figures (``agents.evaluation.figures``) and the env's ``rgb_array`` rendering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import RenderCollection
from matplotlib.figure import Figure

import mm_env  # noqa: F401  (registers the ids)
from agents.evaluation.figures import episode_figure, figure_rgb, policy_figure, save_figure
from agents.exact.dp import solve_dp
from agents.policies import ArticleRule, DPPolicy, LinearSkew
from mm_env.env import MarketMakingEnv
from mm_env.presets import make_params

PARAMS = make_params("default", T=40, I_max=20)


def test_policy_figure(tmp_path):
    policies = [DPPolicy(PARAMS), ArticleRule(0.5, 0.1), LinearSkew(0.7, 0.06)]
    figure = policy_figure(policies, PARAMS, t=5)
    assert isinstance(figure, Figure)
    # Two panels (the offsets and the value heatmap), plus the heatmap's colour bar.
    offsets_axis = next(ax for ax in figure.axes if ax.get_xlabel() == "inventory I")
    value_axis = next(ax for ax in figure.axes if ax.get_xlabel() == "step t")
    assert offsets_axis is not value_axis
    assert len(figure.axes) == 3
    # One bid and one ask line per policy, holding the policy's offsets at t = 5.
    lines = offsets_axis.get_lines()
    assert len(lines) == 2 * len(policies)
    levels = np.arange(-PARAMS.I_max, PARAMS.I_max + 1)
    for index, policy in enumerate(policies):
        bid, ask = policy.tables(PARAMS)
        np.testing.assert_array_equal(lines[2 * index].get_xdata(), levels)
        np.testing.assert_allclose(lines[2 * index].get_ydata(), bid[5])
        np.testing.assert_allclose(lines[2 * index + 1].get_ydata(), ask[5])
    (image,) = value_axis.get_images()
    np.testing.assert_allclose(np.asarray(image.get_array()), solve_dp(PARAMS).value.T)
    assert f"{solve_dp(PARAMS).expected_return:.2f}" in value_axis.get_title()
    path = save_figure(figure, tmp_path / "sub" / "policies.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_policy_figure_without_a_dp_policy_solves_it():
    figure = policy_figure([ArticleRule(0.5, 0.1)], PARAMS)
    value_axis = next(ax for ax in figure.axes if ax.get_xlabel() == "step t")
    np.testing.assert_allclose(np.asarray(value_axis.get_images()[0].get_array()), solve_dp(PARAMS).value.T)


@pytest.mark.parametrize("t", [-1, PARAMS.T])
def test_policy_figure_rejects_bad_steps(t):
    with pytest.raises(ValueError, match="t="):
        policy_figure([ArticleRule()], PARAMS, t=t)


def test_episode_figure():
    n = 25
    rng = np.random.default_rng(0)
    mid = 100 + np.cumsum(rng.normal(size=n))
    history = {
        "mid": mid,
        "bid": mid - 0.5,
        "ask": mid + 0.7,
        "inventory": np.cumsum(rng.integers(-3, 4, size=n)),
        "reward": rng.normal(size=n),
    }
    figure = episode_figure(history, title="hello")
    assert isinstance(figure, Figure)
    assert figure.get_suptitle() == "hello"
    price_axis = figure.axes[0]
    np.testing.assert_allclose(price_axis.get_lines()[0].get_ydata(), mid)
    cumulative = [line for ax in figure.axes for line in ax.get_lines() if line.get_label() == "cumulative"]
    assert len(cumulative) == 1
    np.testing.assert_allclose(cumulative[0].get_ydata(), np.cumsum(history["reward"]))
    rgb = figure_rgb(figure)
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


def play(env, steps, seed=0):
    env.reset(seed=seed)
    env.action_space.seed(seed)
    for _ in range(steps):
        env.step(env.action_space.sample())


def test_render_rgb_array():
    env = MarketMakingEnv(preset="default", T=30, render_mode="rgb_array")
    env.reset(seed=1)
    empty = env.render()
    assert isinstance(empty, np.ndarray) and empty.dtype == np.uint8 and empty.ndim == 3 and empty.shape[2] == 3
    play(env, 10, seed=1)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == empty.shape
    assert frame.shape[0] > 100 and frame.shape[1] > 100
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 10  # a real picture, not a blank canvas
    assert not np.array_equal(frame, empty)
    # A new episode starts an empty history again.
    env.reset(seed=2)
    np.testing.assert_array_equal(env.render(), empty)


def test_render_without_render_mode_returns_none():
    env = MarketMakingEnv(T=5)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_invalid_render_mode():
    with pytest.raises(ValueError, match="render_mode"):
        MarketMakingEnv(render_mode="human")


def test_render_through_gymnasium_make_and_render_collection():
    env = gym.make("mm_env/MarketMaking-v0", T=20, render_mode="rgb_array")
    assert env.render_mode == "rgb_array"
    play(env, 3)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.shape[2] == 3
    collected = RenderCollection(gym.make("mm_env/MarketMaking-v0", T=20, render_mode="rgb_array"))
    play(collected, 3)
    frames = collected.render()
    assert len(frames) == 4  # the reset and three steps
    assert all(f.shape == frame.shape and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[-1])
    assert collected.render() == []  # popped
    collected.close()
    env.close()
