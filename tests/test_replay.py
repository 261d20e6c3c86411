"""The replay backtest (MODEL.md §10.5): hand-made tapes with hand-computed fills, the engine check of §10.4, the env's
API, the runner with the project's policies, and the out-of-sample command on the Bitstamp sample (§10.6–10.7)."""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mm_env  # noqa: F401  (registers the ids)
from agents.calibration.simulate import simulate_tape, simulated_draws
from agents.cli.backtest import choose_policies, markdown_table, run_backtest
from agents.cli.backtest import main as backtest_main
from agents.evaluation.replay import UnitSizeCompanion, replay_policy, replay_windows
from agents.exact.dp import solve_dp
from agents.policies import ConstantSpread, DPPolicy, LinearSkew
from agents.policies.closed_forms import GueantLehalleFernandezTapia
from agents.policies.learned import FunctionPolicy, SB3Policy
from mm_env.data import ModelUnits, Quotes, Tape, Trades, to_steps
from mm_env.data.replay import REPLAY_INFO_KEYS, ReplayEnv
from mm_env.dynamics import initial_state, transition
from mm_env.presets import make_params
from mm_env.xp import SCALAR

REPLAY_ID = "mm_env/Replay-v0"


# ---------------------------------------------------------------------------------------------------------------------
# A hand-made tape: tick 1, lot 0.01, dt 1 s, t0 = 1 (the first whole second after the start at 0), N = 4 steps.
#
# step 0 [1, 2): mid 99.5 (book 99/100); one buy walking 100 × 0.02, 101 × 0.03, 102 × 0.01.
# step 1 [2, 3): mid 99.5; a sell 99 × 0.05, a buy 100 × 0.02, a sell 98 × 0.03, in that order.
# step 2 [3, 4): mid 100.5 (the book moved to 100/101 at 2.8); no trade; the book drops to 98/99 at 3.5.
# step 3 [4, 5): mid 98.5; no trade. P_4 = 98.5.


def hand_raw_tape():
    trades = Trades(
        time=np.array([1.2, 1.2, 1.2, 2.1, 2.5, 2.7]),
        price=np.array([100.0, 101.0, 102.0, 99.0, 100.0, 98.0]),
        size=np.array([0.02, 0.03, 0.01, 0.05, 0.02, 0.03]),
        side=np.array([1, 1, 1, -1, 1, -1]),
        taker_id=np.array([7, 7, 7, 8, 9, 10]),
    )
    quotes = Quotes(
        time=np.array([0.0, 2.8, 3.5]), bid=np.array([99.0, 100.0, 98.0]), ask=np.array([100.0, 101.0, 99.0])
    )
    return Tape(trades, quotes, 0.0, 5.5, "hand-made")


def hand_tape():
    return to_steps(hand_raw_tape(), ModelUnits(dt=1.0, tick=1.0, lot=0.01))


def play(env, offsets, options=None):
    """Reset, then step the raw offsets; returns the rewards and the infos."""
    env.reset(options=options)
    rewards, infos = [], []
    for bid, ask in offsets:
        _, reward, _, _, info = env.step(np.array([bid, ask]))
        rewards.append(reward)
        infos.append(info)
    return rewards, infos


def test_hand_tape_is_what_the_comments_say():
    tape = hand_tape()
    assert tape.N == 4
    np.testing.assert_array_equal(tape.mid, [99.5, 99.5, 100.5, 98.5, 98.5])
    np.testing.assert_array_equal(tape.orders_in_step, [0, 1, 4, 4, 4])
    np.testing.assert_array_equal(tape.side, [1, -1, 0, 0])


# Step 0's buy (100 × 0.02, 101 × 0.03, 102 × 0.01) against an ask at δ from the mid 99.5: (lots sold, realised δ').
ASK_CASES = [
    ("tick", "first", 0.5, 6, 0.5),  # ask 100, the touch: every fill is at or beyond it
    ("tick", "strict", 0.5, 4, 0.5),  # only 101 and 102 trade strictly beyond 100
    ("tick", "first", 0.0, 6, 0.5),  # 99.5 rounds up to the touch: any δ in [0, ½] quotes 100
    ("tick", "first", 1.0, 4, 1.5),  # 100.5 rounds up to 101
    ("tick", "strict", 1.0, 1, 1.5),  # strictly beyond 101: the 102 fill alone
    ("tick", "first", 2.6, 0, 3.5),  # 102.1 rounds up to 103, beyond the order's worst price
    ("continuous", "first", 1.0, 4, 1.0),  # 100.5: the fills at 101 and 102
    ("continuous", "strict", 1.0, 4, 1.0),  # the same: none lies at 100.5
    ("continuous", "strict", 1.5, 1, 1.5),  # 101 exactly: strict leaves it out
    ("continuous", "first", 1.5, 4, 1.5),  # queue-first keeps it
]


@pytest.mark.parametrize(("prices", "queue", "offset", "lots", "realised"), ASK_CASES)
def test_which_fills_reach_the_ask(prices, queue, offset, lots, realised):
    env = ReplayEnv(hand_tape(), I_max=100, lam=0.0, delta_max=5.0, queue=queue, prices=prices, normalize_actions=False)
    rewards, infos = play(env, [(5.0, offset)])
    info = infos[0]
    assert info["sold"] == lots and info["bought"] == 0
    assert info["fills"] == (1 if lots else 0)
    assert info["ask_offset"] == pytest.approx(realised)
    assert info["ask"] == pytest.approx(99.5 + realised)
    assert info["inventory"] == -lots
    assert info["cash"] == pytest.approx(lots * (99.5 + realised))
    assert rewards[0] == pytest.approx(lots * realised)  # spread reward, λ = 0


def test_bid_rounds_down_and_sells_fill_it():
    # Step 1 at mid 99.5 with the ask out of reach: the bid at δ = 0.7 is 98.8, rounded down to 98. The sell at 99
    # does not reach it, the sell at 98 does (queue-first: 3 lots), and only strictly below 98 under strict: nothing.
    for queue, lots in (("first", 3), ("strict", 0)):
        env = ReplayEnv(hand_tape(), I_max=100, lam=0.0, queue=queue, normalize_actions=False)
        _, infos = play(env, [(5.0, 5.0), (0.7, 5.0)])
        assert infos[1]["bid"] == 98.0 and infos[1]["bid_offset"] == pytest.approx(1.5)
        assert infos[1]["bought"] == lots and infos[1]["sold"] == 0


def test_several_fills_per_step_each_against_the_current_capacity():
    # The touch on both sides (bid 99, ask 100 in steps 0 and 1), I_max = 3.
    env = ReplayEnv(hand_tape(), I_max=3, lam=0.0, normalize_actions=False)
    _, infos = play(env, [(0.5, 0.5)] * 4)
    # Step 0: the buy wants 6 lots, the capacity is I + I_max = 3: sells 3, I = −3, cash 3·100.
    assert (infos[0]["sold"], infos[0]["inventory"], infos[0]["cash"]) == (3, -3, 300.0)
    # Step 1: sell 5 at 99 (capacity 6): I = 2; buy 2 at 100 (capacity 5): I = 0; sell 3 at 98→ the bid 99 (capacity 3):
    # I = 3. Cash 300 − 5·99 + 2·100 − 3·99 = −292; captured 5·0.5 + 2·0.5 + 3·0.5 = 5.
    step = infos[1]
    assert (step["fills"], step["bought"], step["sold"], step["inventory"]) == (3, 8, 2, 3)
    assert step["cash"] == pytest.approx(-292.0)
    assert step["spread_captured"] == pytest.approx(5.0)
    last = infos[-1]
    assert last["episode_fills"] == 4 and last["episode_volume"] == 13 and last["episode_both_sided"] == 1
    assert last["episode_max_abs_inventory"] == 3 and last["inventory"] == 3
    # A tighter limit: I_max = 2. Step 0 sells 2 (I = −2); step 1 buys 4 of 5 (I = 2), sells 2 (I = 0), buys 2 of 3.
    env = ReplayEnv(hand_tape(), I_max=2, lam=0.0, normalize_actions=False)
    _, infos = play(env, [(0.5, 0.5)] * 2)
    assert infos[0]["inventory"] == -2
    assert (infos[1]["bought"], infos[1]["sold"], infos[1]["inventory"]) == (6, 2, 2)


def test_rewards_spread_and_mtm_with_penalties_and_the_currency_pnl():
    # I_max = 3, λ = 0.01, α = 0.1; the touch throughout. Inventory after each step: −3, 3, 3, 3. Wealth X + I·P:
    # 300 − 3·99.5 = 1.5; −292 + 3·100.5 = 9.5; −292 + 3·98.5 = 3.5; 3.5.
    penalties = [0.09, 0.09, 0.09, 0.09 + 0.9]
    captured = [1.5, 5.0, 0.0, 0.0]
    wealth_changes = [1.5, 8.0, -6.0, 0.0]
    for reward, gains in (("spread", captured), ("mtm", wealth_changes)):
        env = ReplayEnv(hand_tape(), I_max=3, lam=0.01, alpha=0.1, reward=reward, normalize_actions=False)
        rewards, infos = play(env, [(0.5, 0.5)] * 4)
        np.testing.assert_allclose(rewards, np.subtract(gains, penalties), atol=1e-12)
        last = infos[-1]
        assert last["episode_spread_reward"] == pytest.approx(sum(captured) - sum(penalties))
        assert last["episode_mtm_reward"] == pytest.approx(sum(wealth_changes) - sum(penalties))
        assert last["mtm_pnl"] == pytest.approx(3.5)
        assert last["pnl"] == pytest.approx(3.5 * 1.0 * 0.01)  # tick × lot quote currency per model unit
        assert [info["mtm_change"] for info in infos] == pytest.approx(wealth_changes)
        assert set(REPLAY_INFO_KEYS) == set(last)


def test_observation_carries_the_tapes_last_side_and_windows_start_anywhere():
    env = ReplayEnv(hand_tape(), momentum=0.2, I_max=10, normalize_actions=False)
    assert env.observation_space.shape == (3,)
    obs, info = env.reset()
    np.testing.assert_array_equal(obs, [0.0, 1.0, 0.0])
    assert (info["tape_step"], info["time"]) == (0, 1.0)
    sides = [env.step(np.array([5.0, 5.0]))[0][2] for _ in range(3)]
    assert sides == [1.0, -1.0, 0.0]  # L_{n+1} = S_n of the tape, whatever the market maker did
    # A window of T = 2 from step 1: L_0 = 0 although the tape's L_1 = +1; time left 1, ½, 0.
    env = ReplayEnv(hand_tape(), momentum=0.2, I_max=10, T=2, normalize_actions=False)
    obs, info = env.reset(options={"start": 1})
    np.testing.assert_array_equal(obs, [0.0, 1.0, 0.0])
    assert info["mid"] == 99.5 and info["tape_step"] == 1
    obs, _, terminated, _, info = env.step(np.array([5.0, 5.0]))
    np.testing.assert_array_equal(obs, [0.0, 0.5, -1.0])
    obs, _, terminated, _, info = env.step(np.array([5.0, 5.0]))
    assert terminated and info["tape_step"] == 3 and obs[1] == 0.0
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.array([5.0, 5.0]))


def test_normalised_actions_map_onto_the_offsets():
    env = gym.make(REPLAY_ID, tape=hand_tape(), I_max=100, lam=0.0, delta_max=4.0)
    env.reset()
    _, _, _, _, info = env.step(np.array([1.0, -0.75], dtype=np.float32))  # δ_b = 4, δ_a = 0.5
    assert info["bid"] == 95.0 and info["ask"] == 100.0 and info["sold"] == 6


def test_random_windows_are_seeded():
    env = ReplayEnv(hand_tape(), T=2, start=None)
    starts = []
    for seed in range(20):
        _, info = env.reset(seed=seed)
        starts.append(info["tape_step"])
    assert set(starts) == {0, 1, 2}
    assert [ReplayEnv(hand_tape(), T=2, start=None).reset(seed=s)[1]["tape_step"] for s in range(20)] == starts


@pytest.mark.parametrize(
    "kwargs",
    [
        {"T": 4},
        {"T": 2, "momentum": 0.4, "reward": "mtm"},
        {"T": 2, "start": None, "observation_features": ["inventory", "time_left", "mid_change"]},
    ],
)
def test_gymnasium_check_env_passes_without_warnings(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(REPLAY_ID, tape=hand_tape(), **kwargs).unwrapped)


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_render_draws_the_episode():
    env = ReplayEnv(hand_tape(), render_mode="rgb_array", I_max=3, normalize_actions=False)
    play(env, [(0.5, 0.5)] * 2)
    frame = env.render()
    assert frame is not None and frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    env.close()


BAD_KEYWORDS = [
    ({"queue": "fifo"}, "queue='fifo' is invalid"),
    ({"prices": "round"}, "prices='round' is invalid"),
    ({"start": -1}, "start=-1 is invalid"),
    ({"start": 3, "T": 2}, "start=3 is invalid"),
    ({"start": 1.0, "T": 2}, "start=1.0 is invalid"),
    ({"T": 5}, "T=5 is invalid"),
    ({"observation_features": ["inventory", "last_fill"]}, "'last_fill' is invalid"),
    ({"mode": "article"}, "mode='article' is invalid"),
    ({"render_mode": "human"}, "render_mode='human' is invalid"),
    ({"lam": -1.0}, "lam=-1.0 is invalid"),
    ({"delta_max": "wide"}, "delta_max='wide' is invalid"),
    ({"speed": 2}, "'speed' is not an environment keyword"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_KEYWORDS)
def test_every_keyword_is_checked_in_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        ReplayEnv(hand_tape(), **kwargs)
    assert "\n" not in str(error.value)


def test_tape_and_reset_options_are_checked():
    with pytest.raises(ValueError, match="tape=Tape is invalid: must be a SteppedTape"):
        ReplayEnv(hand_raw_tape())
    env = ReplayEnv(hand_tape(), T=2)
    with pytest.raises(ValueError, match=r"options\[\"start\"\]=3 is invalid: must be an integer in \[0, 2\]"):
        env.reset(options={"start": 3})
    with pytest.raises(ValueError, match="options key 'begin' is invalid"):
        env.reset(options={"begin": 0})
    env.reset()
    with pytest.raises(ValueError, match="action must be finite"):
        env.step(np.array([np.nan, 0.0]))


# ---------------------------------------------------------------------------------------------------------------------
# The runner with the project's policies


def test_runner_matches_the_env_and_reads_learned_policies_like_any_other():
    tape = hand_tape()
    params = make_params(T=4, I_max=3, lam=0.01, alpha=0.1)
    report = replay_policy(ConstantSpread(0.5), tape, params)
    assert (report.fills, report.volume, report.both_sided_steps) == (4, 13, 1)
    assert (report.final_inventory, report.max_abs_inventory) == (3, 3)
    assert report.captured == pytest.approx(6.5)
    assert report.spread_reward == pytest.approx(6.5 - 1.26)
    assert report.mtm_reward == pytest.approx(3.5 - 1.26)
    assert report.pnl == pytest.approx(0.035)
    np.testing.assert_allclose(report.path.mid, [99.5, 99.5, 100.5, 98.5, 98.5])
    np.testing.assert_allclose(report.path.inventory, [0, -3, 3, 3, 3])
    np.testing.assert_allclose(report.path.pnl, np.array([0.0, 1.5, 9.5, 3.5, 3.5]) * 0.01)
    np.testing.assert_allclose(report.path.time, [1.0, 2.0, 3.0, 4.0, 5.0])

    # A function of observations (as a CleanRL agent is) and an SB3-style model that quote the touch, in [-1, 1].
    def touch(obs):
        return np.full((len(obs), 2), -0.8)  # δ = 0.5 on [0, 5]

    class Model:
        def predict(self, obs, deterministic=True):
            return touch(obs), None

    for policy in (FunctionPolicy(touch), SB3Policy(Model())):
        other = replay_policy(policy, tape, params)
        assert other.summary() | {"policy": report.policy} == report.summary()


def test_runner_windows_and_arguments():
    tape = hand_tape()
    reports = replay_windows(LinearSkew(0.5, 0.1), tape, make_params(T=2, I_max=3), queue="strict")
    assert [r.start for r in reports] == [0, 2] and all(r.queue == "strict" for r in reports)
    with pytest.raises(ValueError, match="policy=.* is invalid: must be a Policy"):
        replay_policy(lambda obs: obs, tape, make_params(T=2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start=3 is invalid"):
        replay_policy(ConstantSpread(0.5), tape, make_params(T=2), start=3)


def test_glft_on_the_unit_size_companion():
    # Unit sizes and no momentum: GLFT itself.
    unit = make_params(sizes=(1,), T=10, I_max=5, pi=0.5)
    companion = UnitSizeCompanion()
    states = initial_state(unit, 11)._replace(t=np.zeros(11), inventory=np.arange(-5.0, 6.0))
    np.testing.assert_array_equal(
        np.asarray(companion.quote(states, unit)), np.asarray(GueantLehalleFernandezTapia().quote(states, unit))
    )
    # Sizes 1..9 (mean 5), I_max 50, λ 0.005: inventory 7 counts as round(7/5) = 1 unit of a model with I_max 10
    # and λ 0.025. GLFT there, by hand: θ = sqrt(λ·e/(2k·(Λ_a + Λ_b))) with Λ_a = Λ_b = π·A/2, c = 0.
    params = make_params(momentum=0.2)
    theta = math.sqrt(0.025 * math.e / (2 * 2.0 * 0.9))
    state = initial_state(params, 1)._replace(t=np.zeros(1), inventory=np.array([7.0]), traded=np.array([1.0]))
    bid, ask = companion.quote(state, params)
    assert bid[0] == pytest.approx(0.5 + 3 * theta) and ask[0] == pytest.approx(0.5 - theta)
    _, mean = companion.companion(params)
    assert mean == 5.0
    assert companion.companion(params)[0].I_max == 10


# ---------------------------------------------------------------------------------------------------------------------
# The replay-engine check (MODEL.md §10.4): on a tape made by the model itself, with continuous prices, queue-first
# fills and the spread reward, the replay is the model, path by path.

SET_1 = make_params(pi=0.8, A=0.9, k=2.0, kappa=0.05, sigma=0.3, P0=1000.0)
ENGINE_MODEL = SET_1.replace(T=200, I_max=20, lam=0.005)


def test_simulated_tape_prints_what_the_model_does():
    tape = simulate_tape(SET_1, 300, seed=3)
    stepped = to_steps(tape, ModelUnits(1.0, 1.0, 1.0))
    assert stepped.N == 300 and stepped.units.t0 == 1.0
    draws = simulated_draws(SET_1, 300, seed=3)
    # A trader arrives iff u_side < π, and the tape's market maker fills it at δ = 0 iff u_fill < A.
    printed = [n for n, d in enumerate(draws) if d.side < 0.8 and d.fill < 0.9]
    np.testing.assert_array_equal(np.flatnonzero(stepped.side != 0), printed)
    # Each print's depth beyond the step-start mid is the trader's reservation ln(A/u)/k.
    depth = stepped.depth.max(axis=1)[printed]
    np.testing.assert_allclose(depth, [math.log(0.9 / draws[n].fill) / 2.0 for n in printed], atol=1e-9)


def test_replay_engine_reproduces_the_model_step_by_step():
    seed = 11
    stepped = to_steps(simulate_tape(SET_1, 400, seed), ModelUnits(1.0, 1.0, 1.0))
    draws = simulated_draws(SET_1, 400, seed)
    solution = solve_dp(ENGINE_MODEL)
    for start in (0, 200):
        env = ReplayEnv(stepped, ENGINE_MODEL, start=start, prices="continuous", normalize_actions=False)
        env.reset()
        state = initial_state(ENGINE_MODEL)
        for t in range(200):
            index = int(state.inventory) + ENGINE_MODEL.I_max
            bid, ask = float(solution.bid[t, index]), float(solution.ask[t, index])
            _, reward, _, _, info = env.step(np.array([bid, ask]))
            state, outcome = transition(state, bid, ask, draws[start + t], ENGINE_MODEL, SCALAR)
            assert reward == pytest.approx(outcome.reward, abs=1e-9)
            assert info["inventory"] == state.inventory


def engine_returns(tapes: int, steps: int) -> np.ndarray:
    dp = DPPolicy(ENGINE_MODEL)
    returns: list[float] = []
    for seed in range(tapes):
        stepped = to_steps(simulate_tape(SET_1, steps, seed), ModelUnits(1.0, 1.0, 1.0))
        reports = replay_windows(dp, stepped, ENGINE_MODEL, prices="continuous")
        returns.extend(report.spread_reward for report in reports)
    return np.asarray(returns)


def test_replayed_mean_return_matches_the_exact_value():
    value = solve_dp(ENGINE_MODEL).expected_return
    assert value == pytest.approx(84.116, abs=1e-3)  # MODEL.md §10.4
    returns = engine_returns(tapes=2, steps=5000)  # 50 episodes
    se = returns.std(ddof=1) / math.sqrt(len(returns))
    assert abs(returns.mean() - value) <= 3.0 * se


@pytest.mark.slow
def test_replayed_mean_return_matches_the_exact_value_on_100_tapes():
    value = solve_dp(ENGINE_MODEL).expected_return
    returns = engine_returns(tapes=100, steps=5000)  # 2,500 episodes, as the reference
    se = returns.std(ddof=1) / math.sqrt(len(returns))
    assert abs(returns.mean() - value) <= 3.0 * se
    assert se < 0.4


# ---------------------------------------------------------------------------------------------------------------------
# The out-of-sample command (MODEL.md §10.6) and the Bitstamp sample's replay table (§10.7)


def test_policies_of_the_protocol_and_their_rows():
    model = make_params(T=2, I_max=3, lam=0.01, delta_max=5.0)
    policies = choose_policies(model, tuned=True, other_lams=[0.1])
    names = [policy.name for policy in policies]
    assert names[:3] == ["DP optimum, spread, λ = 0.01", "DP optimum, mtm, λ = 0.01", "DP optimum, spread, λ = 0.1"]
    assert names[3].endswith("(tuned)") and names[4].endswith("(tuned)")
    assert "GLFT (unit-size companion)" in names
    assert names[-3:] == ["constant offset 0.5", "constant offset 1.5", "constant offset 3.5"]
    rows = run_backtest(policies, model, hand_tape(), start=1)
    dp = solve_dp(model)
    assert rows[0].expected_return == pytest.approx(dp.expected_return)
    assert all(row.expected_return is not None and row.expected_return <= dp.expected_return + 1e-9 for row in rows)
    touch = rows[-3]
    assert touch.replays["first"].summary() == replay_policy(ConstantSpread(0.5), hand_tape(), model, start=1).summary()
    assert touch.replays["strict"].queue == "strict"
    table = markdown_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| constant offset 0.5 |" in table


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--split", "1.5"], "is not a fraction in"), (["--lot", "0"], "is not a positive number")],
)
def test_command_refuses_bad_options_in_one_line(option, message, tmp_path, capsys):
    arguments = ["missing", "--format", "bitstamp", "--dt", "1", "--tick", "1", "--lot", "0.01", "--I-max", "100"]
    arguments += ["--lam", "1e-4", "--delta-max", "20", *option, "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_status:
        backtest_main(arguments)
    assert exit_status.value.code == 2
    assert message in capsys.readouterr().err


def test_command_names_an_unreadable_tape(tmp_path, capsys):
    arguments = [str(tmp_path / "none.csv"), "--format", "csv", "--dt", "1", "--tick", "1", "--lot", "0.01"]
    arguments += ["--I-max", "10", "--lam", "0", "--delta-max", "5", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        backtest_main(arguments)
    assert "none.csv" in capsys.readouterr().err.strip().splitlines()[-1]


def _sample_folder() -> Path | None:
    spec = importlib.util.find_spec("ob_analytics")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "_sample_data"
    return folder if (folder / "orders.csv.gz").exists() else None


SAMPLE = _sample_folder()
# MODEL.md §10.7: policy → (model E[return], captured, P&L queue-first, P&L strict); captured to the unit, P&L to
# the cent (the reference's half cents round either way).
REFERENCE = {
    "constant offset 0.5": (-346.7, 278, -50.36, 3.94),
    "constant offset 1.5": (-142.2, 491, 7.17, 32.49),
    "constant offset 3.5": (104.0, 717, 33.01, 57.12),
    "DP optimum, spread, λ = 0.0001": (243.9, 1027, -36.39, -10.69),
    "DP optimum, spread, λ = 0.001": (79.1, 2116, -16.13, 1.69),
    "DP optimum, mtm, λ = 0.0001": (189.3, 1059, -55.34, -26.30),
}


@pytest.fixture(scope="module")
def sample_backtest(tmp_path_factory):
    if SAMPLE is None:
        pytest.skip("needs the Bitstamp sample: pip install --no-deps ob-analytics")
    out = tmp_path_factory.mktemp("backtest")
    arguments = [str(SAMPLE), "--format", "bitstamp", "--dt", "1", "--tick", "1", "--lot", "0.01", "--I-max", "100"]
    arguments += ["--lam", "1e-4", "--delta-max", "20", "--other-lam", "1e-3", "--no-tuning", "--out", str(out)]
    assert backtest_main(arguments) == 0
    return out


def test_command_on_the_bitstamp_sample_writes_its_results(sample_backtest):
    payload = json.loads((sample_backtest / "backtest.json").read_text())
    assert payload["calibration_steps"] == 899 and payload["test_steps"] == 900
    assert payload["model"]["T"] == 900 and payload["model"]["I_max"] == 100
    names = [row["policy"] for row in payload["rows"]]
    assert "article rule Δ=0.5, γ=0.1" in names and "GLFT (unit-size companion)" in names
    assert (sample_backtest / "backtest.md").read_text().startswith("`python -m agents.cli.backtest ")
    if importlib.util.find_spec("matplotlib") is not None:
        assert (sample_backtest / "backtest.png").stat().st_size > 10_000


def test_bitstamp_sample_reproduces_the_replay_table(sample_backtest):
    rows = {row["policy"]: row for row in json.loads((sample_backtest / "backtest.json").read_text())["rows"]}
    for name, (expected, captured, first, strict) in REFERENCE.items():
        row = rows[name]
        assert row["expected_return"] == pytest.approx(expected, abs=0.05), name
        assert row["replays"]["first"]["captured"] == pytest.approx(captured, abs=0.5), name
        assert row["replays"]["first"]["pnl"] == pytest.approx(first, abs=0.006), name
        assert row["replays"]["strict"]["pnl"] == pytest.approx(strict, abs=0.006), name
        assert row["replays"]["first"]["max_abs_inventory"] == 100  # every policy reaches |I| = 100
