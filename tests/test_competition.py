import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

from mm_env.competition import CompetitionConfig, CompetitionParams, env, make_competition_params, parallel_env
from mm_env.dynamics import Draws, initial_state, sample_draws, transition
from mm_env.presets import make_params


def one_step(inventory, bid, ask, side=0.2, size=0.5, fill=0.1, tie=0.7, reward="spread"):
    params = make_competition_params(reward=reward)
    state = initial_state(params, 1)._replace(inventory=np.array([inventory], dtype=float))
    draws = Draws(np.array([side]), np.array([size]), np.array([fill]), 0.0, None, None, np.array([tie]))
    return transition(state, np.array([bid], dtype=float), np.array([ask], dtype=float), draws, params)


def test_hand_computed_tie_goes_to_the_drawn_market_maker():
    # A buyer of 5 (u=0.2 < ½ buys, floor(9·0.5) + 1 = 5) meets two asks at 0.4; it accepts (0.1 < 0.9·e^{-0.8}).
    after, outcome = one_step([0, 0], [0.5, 0.3], [0.4, 0.4], tie=0.7)  # ⌊0.7·2⌋ = 1: the second one
    assert outcome.winner.tolist() == [1]
    assert outcome.executed.tolist() == [[0.0, 5.0]]
    assert after.inventory.tolist() == [[0.0, -5.0]]
    assert after.cash[0, 1] == pytest.approx(5 * 100.0 + 5 * 0.4)
    assert after.mid[0] == pytest.approx(100.0 + 0.05 * 5)
    assert outcome.reward[0].tolist() == pytest.approx([0.0, 5 * 0.4 - 0.005 * 25])
    _, outcome = one_step([0, 0], [0.5, 0.3], [0.4, 0.4], tie=0.3)  # ⌊0.6⌋ = 0: the first one
    assert outcome.winner.tolist() == [0]


def test_hand_computed_best_price_wins_and_mtm_moves_the_loser():
    after, outcome = one_step([10, 0], [0.5, 0.3], [0.4, 0.6], reward="mtm")
    assert outcome.winner.tolist() == [0]
    # The loser's wealth X + I·P does not change (it holds nothing); the winner's changes by its fill and impact.
    assert outcome.reward[0, 1] == pytest.approx(0.0)
    wealth_change = 5 * 0.4 + (10 - 5) * (0.05 * 5)  # earned at 0.4 from the mid, then the rest marked up
    assert outcome.reward[0, 0] == pytest.approx(wealth_change - 0.005 * 25)


def test_hand_computed_capacity_decides_who_can_trade_and_caps_the_fill():
    # The first market maker is at −50: it cannot sell to a buyer, so the worse ask wins.
    _, outcome = one_step([-50, 0], [0.5, 0.3], [0.1, 0.4])
    assert outcome.winner.tolist() == [1] and outcome.offset.tolist() == [0.4]
    # At −48 it can sell 2 of the 5: the rest of the order is not routed to the other market maker.
    after, outcome = one_step([-48, 0], [0.5, 0.3], [0.1, 0.4])
    assert outcome.executed.tolist() == [[2.0, 0.0]] and after.inventory.tolist() == [[-50.0, 0.0]]
    # Nobody can sell: nothing trades.
    after, outcome = one_step([-50, -50], [0.5, 0.3], [0.1, 0.4])
    assert outcome.winner.tolist() == [-1] and not outcome.executed.any()
    assert after.inventory.tolist() == [[-50.0, -50.0]]


def test_no_fill_when_the_best_quote_is_refused():
    _, outcome = one_step([0, 0], [0.5, 0.3], [0.4, 0.4], fill=0.5)  # 0.5 > 0.9·e^{-0.8}
    # The trader still went to the best quote (the drawn one of the tie), and refused it.
    assert not outcome.executed.any() and outcome.winner.tolist() == [1]


def test_ties_are_split_evenly():
    params = make_competition_params(num_market_makers=3)
    n = 60_000
    state = initial_state(params, n)
    draws = sample_draws(np.random.default_rng(0), params, n)
    draws = draws._replace(fill=np.zeros(n))  # every quote accepted
    quotes = np.full((n, 3), 0.5)
    _, outcome = transition(state, quotes, quotes, draws, params)
    shares = np.bincount(outcome.winner, minlength=3) / n
    assert shares == pytest.approx([1 / 3] * 3, abs=4 * np.sqrt(2 / 9 / n))


@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("default", {"sigma": 0.1, "jump_prob": 0.1, "jump_size": 0.3, "pi": 0.8}),
        ("mtm", {}),
        ("informed", {}),
        ("momentum", {}),
        ("transient", {}),
        ("sqrt_impact", {"size_probs": (0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05)}),
    ],
)
def test_one_market_maker_reproduces_the_one_mm_core_bit_for_bit(preset, overrides):
    market = make_params(preset, **overrides)
    game = CompetitionParams(market, num_market_makers=1, tick=0.25)
    n = 32
    rng_one, rng_game, quotes = (np.random.default_rng(s) for s in (1, 1, 5))
    one, many = initial_state(market, n), initial_state(game, n)
    for _ in range(market.T):
        bid, ask = game.on_grid(quotes.uniform(0, 2, n)), game.on_grid(quotes.uniform(0, 2, n))
        one, one_outcome = transition(one, bid, ask, sample_draws(rng_one, market, n), market)
        many, outcome = transition(many, bid[:, None], ask[:, None], sample_draws(rng_game, game, n), game)
        assert np.array_equal(outcome.reward[:, 0], one_outcome.reward)
        assert np.array_equal(many.inventory[:, 0], one.inventory)
        assert np.array_equal(many.cash[:, 0], one.cash)
        assert np.array_equal(many.mid, one.mid)


def test_params_validation_names_the_field():
    with pytest.raises(ValueError, match="tick=0"):
        make_competition_params(tick=0)
    with pytest.raises(ValueError, match="num_market_makers=0"):
        make_competition_params(num_market_makers=0)
    with pytest.raises(ValueError, match="num_market_makers=65"):
        make_competition_params(num_market_makers=65)
    with pytest.raises(ValueError, match="'gamma' is not a competition keyword"):
        make_competition_params(gamma=1)
    with pytest.raises(ValueError, match="not both"):
        CompetitionConfig.from_kwargs(params=make_params(), preset="mtm")


def test_offsets_are_rounded_to_the_tick_grid_within_bounds():
    params = make_competition_params(tick=0.05)
    assert params.on_grid([0.712, 0.0249, -3.0, 7.0]).tolist() == pytest.approx([0.7, 0.0, 0.0, 5.0])


def test_observations_list_own_then_other_inventories_then_time_left():
    config = CompetitionConfig.from_kwargs(num_market_makers=3)
    state = initial_state(config.params, 1)._replace(inventory=np.array([[10.0, -20.0, 5.0]]), t=np.array([50.0]))
    obs = config.observe(state)[0]
    expected = [[0.2, -0.4, 0.1, 0.75], [-0.4, 0.2, 0.1, 0.75], [0.1, 0.2, -0.4, 0.75]]
    np.testing.assert_allclose(obs, expected, rtol=1e-6)
    assert config.observation_space.contains(obs[0])
    assert config.features == ("inventory", "other_inventory_1", "other_inventory_2", "time_left")


def test_pettingzoo_parallel_api_and_seed_tests():
    parallel_api_test(parallel_env(), num_cycles=250)
    parallel_api_test(parallel_env(num_market_makers=3, momentum=0.4, reward="mtm", T=20), num_cycles=50)
    parallel_seed_test(lambda: parallel_env(T=50), num_cycles=120)


def test_pettingzoo_aec_api_and_seed_tests():
    api_test(env(T=30), num_cycles=100)
    seed_test(lambda: env(T=30), num_cycles=100)


def test_parallel_env_rewards_match_the_core_on_the_same_seed():
    game = parallel_env(T=30)
    observations, _ = game.reset(seed=3)
    rng = np.random.default_rng(3)
    state = initial_state(game.params, 1)
    total = np.zeros(2)
    while game.agents:
        actions = {"mm_0": np.array([-0.7, -0.8]), "mm_1": np.array([-0.75, -0.72])}
        _, rewards, *_ = game.step(actions)
        bid, ask = game.config.decode(np.array([[actions["mm_0"], actions["mm_1"]]]), 1)
        state, outcome = transition(state, bid, ask, sample_draws(rng, game.params, 1), game.params)
        assert [rewards["mm_0"], rewards["mm_1"]] == outcome.reward[0].tolist()
        total += outcome.reward[0]
    assert np.abs(total).sum() > 0


def test_parallel_env_refuses_missing_actions_and_steps_after_the_end():
    game = parallel_env(T=1)
    game.reset(seed=0)
    with pytest.raises(ValueError, match="missing for \\['mm_1'\\]"):
        game.step({"mm_0": np.zeros(2)})
    game.step({"mm_0": np.zeros(2), "mm_1": np.zeros(2)})
    with pytest.raises(RuntimeError, match="reset"):
        game.step({"mm_0": np.zeros(2), "mm_1": np.zeros(2)})


@pytest.mark.parametrize("num_envs", [2, 3])  # as many environments as market makers, and not
def test_a_batch_of_games_steps_only_its_active_environments(num_envs):
    from mm_env.batch import MarketBatch

    config = CompetitionConfig.from_kwargs(T=10)
    batch = MarketBatch(config, num_envs)
    rng = np.random.default_rng(0)
    actions = np.zeros((num_envs, 2, 2))
    active = [True] * num_envs
    active[1] = False  # a plain list is a mask too
    outcome, info = batch.step(actions, rng, active=active)
    assert batch.state.t.tolist() == [float(flag) for flag in active]
    assert outcome.winner[1] == -1 and info["winner"][1] == -1 and info["winner"].dtype == outcome.winner.dtype
    for key in ("bid", "ask", "fill_size", "spread_captured", "inventory_penalty"):
        assert info[key].shape == (num_envs, 2) and not info[key][1].any(), key
    # The active environments stepped as a batch of them alone would, on the same draws.
    alone = MarketBatch(config, num_envs - 1)
    alone_outcome, _ = alone.step(np.zeros((num_envs - 1, 2, 2)), np.random.default_rng(0))
    kept = [0, *range(2, num_envs)]
    np.testing.assert_array_equal(batch.state.inventory[kept], alone.state.inventory)
    np.testing.assert_array_equal(outcome.reward[kept], alone_outcome.reward)
    with pytest.raises(ValueError, match="one entry per environment"):
        batch.step(actions, rng, active=[True] * (num_envs + 1))


def test_a_width_of_one_tick_in_decimal_holds_two_ticks_and_absurd_ticks_are_one_clear_line():
    # 0.6 - 0.5 is 0.09999999999999998 in floating point: the grid's tolerance applies to the width too.
    params = make_competition_params(tick=0.1, delta_min=0.5, delta_max=0.6)
    assert params.tick_offsets().tolist() == pytest.approx([0.5, 0.6])
    with pytest.raises(ValueError, match=r"tick=1e-310 is invalid: must be at least .* \(at most 10,000,000 ticks\)"):
        make_competition_params(tick=1e-310)  # no OverflowError: a ValueError like every other bad value
    with pytest.raises(ValueError, match="small enough for two ticks"):
        make_competition_params(tick=10.0)
