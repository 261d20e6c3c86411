"""``render_mode="rgb_array"``: the live figure of the single env and of the vector env's first environment."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import DependencyNotInstalled
from helpers import ENV_ID, random_actions

import mm_env
from mm_env.competition.single import CompetingMarketMakersVectorEnv
from mm_env.env import MarketMakingEnv
from mm_env.render import HISTORY_KEYS, EpisodeRenderer, episode_figure, figure_to_rgb
from mm_env.vector_env import MarketMakingVectorEnv

FRAME_SHAPE = (480, 640, 3)


def play(env: MarketMakingEnv, steps: int, seed: int = 0) -> list[np.ndarray]:
    """Reset with ``seed``, step with random actions, and return the frame after the reset and after each step."""
    env.reset(seed=seed)
    frames = [env.render()]
    for action in random_actions(seed, steps, shape=(2,)):
        env.step(action)
        frames.append(env.render())
    return frames


def test_matplotlib_is_imported_only_to_draw_a_frame():
    code = "import sys, mm_env; mm_env.MarketMakingEnv(render_mode='rgb_array'); assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_frames_have_the_frame_shape_and_change_with_the_state():
    env = MarketMakingEnv(T=30, render_mode="rgb_array")
    frames = play(env, 10)
    for frame in frames:
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.shape == FRAME_SHAPE
    assert len(np.unique(frames[-1].reshape(-1, 3), axis=0)) > 10  # a real picture, not a blank canvas
    for before, after in zip(frames, frames[1:], strict=False):
        assert not np.array_equal(before, after)  # at least the title's step count moves
    # A frame is a copy: later frames do not change it, and a frame without a step in between is the same.
    last = frames[-1].copy()
    np.testing.assert_array_equal(env.render(), last)
    np.testing.assert_array_equal(frames[-1], last)
    env.close()


def test_a_frame_depends_only_on_the_history():
    # Frames are redrawn in part (blitting); drawing every step or only the last must give the same picture, and the
    # one that a fresh renderer draws for the same history.
    every = MarketMakingEnv(T=25, render_mode="rgb_array")
    last_only = MarketMakingEnv(T=25, render_mode="rgb_array")
    frame = play(every, 25, seed=4)[-1]
    last_only.reset(seed=4)
    for action in random_actions(4, 25, shape=(2,)):
        last_only.step(action)
    np.testing.assert_array_equal(last_only.render(), frame)
    fresh = EpisodeRenderer(25)
    for values in zip(*(every._renderer.history[key] for key in HISTORY_KEYS), strict=True):
        fresh.record(*values)
    np.testing.assert_array_equal(fresh.render(), frame)


def test_reset_starts_a_fresh_episode_plot():
    env = MarketMakingEnv(T=20, render_mode="rgb_array")
    empty = play(env, 20, seed=1)[0]
    env.reset(seed=2)
    np.testing.assert_array_equal(env.render(), empty)
    assert all(len(values) == 0 for values in env._renderer.history.values())
    np.testing.assert_array_equal(play(MarketMakingEnv(T=20, render_mode="rgb_array"), 0)[0], empty)


def test_close_releases_the_figure_and_a_later_render_makes_a_new_one():
    env = MarketMakingEnv(T=20, render_mode="rgb_array")
    frame = play(env, 5)[-1]
    assert env._renderer._figure is not None
    env.close()
    assert env._renderer._figure is None
    np.testing.assert_array_equal(env.render(), frame)


def test_episode_figure_still_draws_a_whole_episode():
    env = MarketMakingEnv(T=20, render_mode="rgb_array")
    play(env, 20)
    history = {key: np.asarray(values) for key, values in env._renderer.history.items()}
    image = figure_to_rgb(episode_figure(history, title="one episode"))
    assert image.dtype == np.uint8 and image.shape == (750, 900, 3)
    empty = figure_to_rgb(episode_figure({key: [] for key in HISTORY_KEYS}))
    assert empty.shape == image.shape and not np.array_equal(empty, image)


def test_vector_env_renders_env_0_like_the_single_env_across_autoresets():
    # With one environment the vector env's trajectory is the single env's (see test_vector.py), so the frames of
    # the same history must be equal, including after the NEXT_STEP autoreset.
    T = 6
    vec = MarketMakingVectorEnv(num_envs=1, T=T, render_mode="rgb_array")
    single = MarketMakingEnv(T=T, render_mode="rgb_array")
    vec.reset(seed=31)
    single.reset(seed=31)
    frames = vec.render()
    assert isinstance(frames, tuple) and len(frames) == 1
    np.testing.assert_array_equal(frames[0], single.render())
    for step, action in enumerate(random_actions(7, 3 * (T + 1), shape=(1, 2)), start=1):
        vec.step(action)
        if step % (T + 1) == 0:
            single.reset()  # the vector env's autoreset step
        else:
            single.step(action[0])
        (frame,) = vec.render()
        np.testing.assert_array_equal(frame, single.render(), err_msg=f"step {step}")
    vec.close()
    single.close()


def test_vector_env_tracks_env_0_among_several():
    # Env 0's history rebuilt from the vector env's info arrays (the mid before a step is the one after the step
    # before) and drawn by a fresh renderer gives the vector env's frame, across autoresets and a partial reset.
    T = 5
    vec = MarketMakingVectorEnv(num_envs=3, T=T, render_mode="rgb_array")
    _, info = vec.reset(seed=3)
    mid = info["mid"][0]
    expected = EpisodeRenderer(T)
    for step, actions in enumerate(random_actions(8, 4 * (T + 1), shape=(3, 2))):
        if step == 9:
            _, info = vec.reset(options={"reset_mask": np.array([True, False, True])})
            expected.clear()
            mid = info["mid"][0]
        _, reward, _, _, info = vec.step(actions)
        if info["_bid"][0]:
            expected.record(mid, info["bid"][0], info["ask"][0], info["inventory"][0], reward[0])
        else:
            expected.clear()  # env 0's autoreset step
        mid = info["mid"][0]
        np.testing.assert_array_equal(vec.render()[0], expected.render(), err_msg=f"step {step}")
    # A partial reset that spares env 0 keeps its episode.
    frame = vec.render()[0]
    vec.reset(options={"reset_mask": np.array([False, True, True])})
    np.testing.assert_array_equal(vec.render()[0], frame)


def test_make_vec_with_render_mode():
    envs = gym.make_vec(ENV_ID, num_envs=4, vectorization_mode="vector_entry_point", render_mode="rgb_array", T=10)
    assert isinstance(envs, MarketMakingVectorEnv) and envs.render_mode == "rgb_array"
    envs.reset(seed=0)
    envs.step(np.zeros((4, 2), dtype=np.float32))
    (frame,) = envs.render()
    assert frame.shape == FRAME_SHAPE and frame.dtype == np.uint8
    envs.close()


def test_render_collection_gathers_an_episode_of_frames():
    env = gym.wrappers.RenderCollection(gym.make(ENV_ID, T=10, render_mode="rgb_array"))
    env.reset(seed=0)
    terminated = False
    while not terminated:
        terminated = env.step(env.action_space.sample())[2]
    frames = env.render()
    assert len(frames) == 11  # the reset and ten steps
    assert all(frame.shape == FRAME_SHAPE for frame in frames)
    env.close()


def test_record_video_writes_a_video(tmp_path):
    pytest.importorskip("moviepy")
    env = gym.wrappers.RecordVideo(
        gym.make(ENV_ID, T=10, render_mode="rgb_array"), str(tmp_path / "videos"), episode_trigger=lambda _: True
    )
    env.reset(seed=0)
    terminated = False
    while not terminated:
        terminated = env.step(env.action_space.sample())[2]
    env.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0


def test_vector_record_video_of_a_one_env_vector_env(tmp_path):
    pytest.importorskip("moviepy")
    envs = gym.make_vec(ENV_ID, num_envs=1, vectorization_mode="vector_entry_point", render_mode="rgb_array", T=10)
    envs = gym.wrappers.vector.RecordVideo(envs, str(tmp_path / "videos"), episode_trigger=lambda _: True)
    envs.reset(seed=0)
    for _ in range(11):  # the episode and the autoreset step, which ends the video
        envs.step(np.zeros((1, 2), dtype=np.float32))
    envs.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert videos and all(video.stat().st_size > 0 for video in videos)


@pytest.mark.parametrize("mode", ["human", "ansi", "rgb"])
def test_bad_render_mode_raises(mode):
    with pytest.raises(ValueError, match="render_mode"):
        MarketMakingEnv(render_mode=mode)
    with pytest.raises(ValueError, match="render_mode"):
        MarketMakingVectorEnv(num_envs=2, render_mode=mode)


def test_competition_vector_env_refuses_every_render_mode():
    with pytest.raises(ValueError, match=r"render_mode='rgb_array' is invalid: allowed \[\]"):
        CompetingMarketMakersVectorEnv(num_envs=2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="render_mode"):
        gym.make_vec(mm_env.COMPETING_ID, num_envs=2, vectorization_mode="vector_entry_point", render_mode="rgb_array")


def test_render_without_render_mode_warns_and_returns_none():
    env = MarketMakingEnv(T=5)
    vec = MarketMakingVectorEnv(num_envs=2, T=5)
    env.reset(seed=0)
    vec.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None
    with pytest.warns(UserWarning, match="render_mode"):
        assert vec.render() is None


def test_missing_matplotlib_fails_at_construction_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what a missing package looks like to import
    with pytest.raises(DependencyNotInstalled, match=r'pip install "mm_env\[render\]"'):
        MarketMakingEnv(render_mode="rgb_array")
    with pytest.raises(DependencyNotInstalled, match=r'pip install "mm_env\[render\]"'):
        MarketMakingVectorEnv(num_envs=2, render_mode="rgb_array")
    MarketMakingEnv()  # without rendering, matplotlib is not needed
