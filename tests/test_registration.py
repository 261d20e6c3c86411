"""Registration of the Gymnasium ids, including from a fresh interpreter and in SB3 subprocess workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import gymnasium as gym
import numpy as np
import pytest
from helpers import ARTICLE_ENV_ID, ENV_ID
from stable_baselines3.common.env_util import make_vec_env

import mm_env
from mm_env.env import MarketMakingEnv
from mm_env.presets import PRESETS
from mm_env.vector_env import MarketMakingVectorEnv


def run_python(code: str, tmp_path, timeout: float = 120.0) -> str:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_make_with_module_prefix_in_a_fresh_interpreter(tmp_path):
    out = run_python(
        """
        import sys
        import gymnasium
        assert "mm_env" not in sys.modules
        env = gymnasium.make("mm_env:mm_env/MarketMaking-v0", T=3)
        obs, info = env.reset(seed=0)
        for _ in range(3):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        print(type(env.unwrapped).__name__, env.unwrapped.params.T, terminated, truncated)
        print("mm_env/ArticleMarketMaker-v0" in gymnasium.registry)
        """,
        tmp_path,
    )
    assert out.split() == ["MarketMakingEnv", "3", "True", "False", "True"]


def test_sb3_make_vec_env_with_subproc_workers(tmp_path):
    out = run_python(
        """
        import numpy as np
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import SubprocVecEnv

        if __name__ == "__main__":
            venv = make_vec_env(
                "mm_env:mm_env/MarketMaking-v0", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv, env_kwargs={"T": 4}
            )
            obs = venv.reset()
            assert obs.shape == (2, 2), obs.shape
            dones_seen = 0
            for _ in range(6):
                obs, rewards, dones, infos = venv.step(np.zeros((2, 2), dtype=np.float32))
                dones_seen += int(dones.sum())
            lengths = [info["episode"]["l"] for info in infos if "episode" in info]
            venv.close()
            print(dones_seen, rewards.shape[0], lengths)
        """,
        tmp_path,
    )
    # Both workers finished their 4-step episode once in 6 steps; no episode ended at the last step.
    assert out.split() == ["2", "2", "[]"]


def test_sb3_make_vec_env_in_process():
    # SB3's make_vec_env passes render_mode="rgb_array" to gym.make for string ids (falling back only on TypeError).
    venv = make_vec_env(ENV_ID, n_envs=2, seed=0, env_kwargs={"T": 4})
    obs = venv.reset()
    assert obs.shape == (2, 2)
    for _ in range(4):
        _, _, dones, infos = venv.step(np.zeros((2, 2), dtype=np.float32))
    assert dones.all()
    assert [info["episode"]["l"] for info in infos] == [4, 4]


def test_both_ids_registered_after_import():
    assert mm_env.MARKET_MAKING_ID == ENV_ID
    assert mm_env.ARTICLE_ID == ARTICLE_ENV_ID
    for env_id, preset in ((ENV_ID, "default"), (ARTICLE_ENV_ID, "article")):
        spec = gym.spec(env_id)
        assert spec.kwargs.get("preset", "default") == preset
        assert gym.make(env_id).unwrapped.params == mm_env.make_params(preset)
        assert spec.vector_entry_point is not None
        assert spec.max_episode_steps is None  # the env terminates itself after T steps


def test_register_envs_is_idempotent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mm_env.register_envs()
    assert ENV_ID in gym.registry and ARTICLE_ENV_ID in gym.registry


def test_market_making_id_is_the_default_model():
    env = gym.make(ENV_ID)
    assert isinstance(env.unwrapped, MarketMakingEnv)
    assert env.unwrapped.params == PRESETS["default"]


def test_article_id_uses_article_mode():
    env = gym.make(ARTICLE_ENV_ID)
    p = env.unwrapped.params
    assert p.mode == "article"
    assert p == PRESETS["article"]
    # Behaviour: quotes at delta_max (which would essentially never fill in the standard model) still fill in full.
    env.reset(seed=0)
    for _ in range(50):
        _, reward, _, _, info = env.step(np.ones(2, dtype=np.float32))
        assert info["trader_side"] in (-1, 1)
        assert info["fill_size"] == info["trader_size"] > 0
        # The reward is the full quoted spread (2 * delta_max) times the size minus the penalty.
        expected = 2 * p.delta_max * info["trader_size"] - p.lam * info["inventory"] ** 2
        assert abs(reward - expected) < 1e-9


def test_article_id_vector_entry_point():
    env = gym.make_vec(ARTICLE_ENV_ID, num_envs=3)
    assert isinstance(env.unwrapped, MarketMakingVectorEnv)
    assert env.unwrapped.params.mode == "article"


def test_params_and_preset_together_are_refused():
    params = mm_env.make_params(T=20)
    assert gym.make(ENV_ID, params=params).unwrapped.params == params
    with pytest.raises(ValueError, match="not both"):
        gym.make(ENV_ID, params=params, preset="mtm")
    with pytest.raises(ValueError, match="must be a MarketParams"):
        gym.make(ENV_ID, params="mtm")


def test_an_unknown_keyword_lists_the_environment_keywords_too():
    with pytest.raises(ValueError, match="'features' is not an environment keyword") as excinfo:
        gym.make(ENV_ID, features=["inventory"])
    assert "observation_features" in str(excinfo.value) and "lam" in str(excinfo.value)
