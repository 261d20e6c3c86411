"""Checked by mypy (see ``files`` in ``pyproject.toml``), never run: the public surface as a user's mypy sees it."""

from typing import assert_type

import numpy as np

import mm_env
from mm_env.competition import make_competition_params
from mm_env.xp import Number

params = mm_env.make_params("easy")
assert_type(params.lam, float)
assert_type(params.kappa, float)
assert_type(params.sizes, tuple[int, ...])
assert_type(params.size_probs, tuple[float, ...] | None)
assert_type(params.reward, str)
assert_type(params.replace(lam=0.003), mm_env.MarketParams)

game = make_competition_params(num_market_makers=3)
assert_type(game.market.lam, float)
assert_type(game.num_market_makers, int)

env = mm_env.MarketMakingEnv(params)
observation, info = env.reset(seed=0)
assert_type(observation, np.ndarray)
state = env.state
assert state is not None
assert_type(state.inventory, Number)
