"""Calibration (MODEL.md §10.3): the estimators by hand, the recovery test of §10.4, §10.7 on the Bitstamp sample."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import mm_env  # noqa: F401  (registers the ids)
from agents.calibration.calibrate import (
    CLIP,
    MIN_REACHED,
    calibrate,
    fit_fill,
    fit_impact,
    split_jumps,
)
from agents.calibration.estimators import (
    delta_method,
    hac_mean,
    long_run_covariance,
    newey_west_lag,
    ols_sandwich,
    sandwich,
)
from agents.calibration.simulate import simulate_tape
from mm_env.data import ModelUnits, Quotes, Tape, Trades, to_steps
from mm_env.presets import make_params

# ---------------------------------------------------------------------------------------------------- the estimators


def test_newey_west_lag_by_hand():
    assert newey_west_lag(100) == 4  # ⌊4·1⌋
    assert newey_west_lag(1799) == 7  # ⌊4·17.99^{2/9}⌋ = ⌊4·1.9006⌋
    assert newey_west_lag(5000) == 9  # ⌊4·50^{2/9}⌋ = ⌊4·2.3861⌋
    assert newey_west_lag(10) == 2  # ⌊4·0.1^{2/9}⌋ = ⌊4·0.5995⌋
    assert newey_west_lag(0) == 0


def test_long_run_covariance_and_hac_mean_by_hand():
    u = np.array([1.0, 2.0, 4.0, 1.0])  # centred: −1, 0, 2, −1
    # Γ0 = (1 + 0 + 4 + 1)/4 = 1.5, Γ1 = (0·(−1) + 2·0 + (−1)·2)/4 = −0.5, weight 1 − 1/2: Ω = 1.5 + 2·0.5·(−0.5).
    assert long_run_covariance(u, lag=1)[0, 0] == pytest.approx(1.0)
    assert long_run_covariance(u, lag=0)[0, 0] == pytest.approx(1.5)
    # Lag 2: Γ2 = ((−1)·2 + 0·(−1))/4... wait rows t=2,3 against t=0,1: (2·(−1) + (−1)·0)/4 = −0.5, weight 1/3.
    assert long_run_covariance(u, lag=2)[0, 0] == pytest.approx(1.5 + 2 * (2 / 3) * -0.5 + 2 * (1 / 3) * -0.5)
    mean, cov = hac_mean(u, lag=1)
    assert mean[0] == 2.0 and cov[0, 0] == pytest.approx(0.25)
    # Two columns: the cross term by hand at lag 0, (−1·1 + 0·0 + 2·(−1) + (−1)·0)/4 with the second centred on 1.
    both = np.column_stack([u, [2.0, 1.0, 0.0, 1.0]])
    assert long_run_covariance(both, lag=0)[0, 1] == pytest.approx((-1 * 1 + 0 * 0 + 2 * -1 + -1 * 0) / 4)
    assert long_run_covariance([3.0, 1.0], lag=0, demean=False)[0, 0] == pytest.approx(5.0)


def test_delta_method_by_hand():
    # f(x, y) = x/y at (2, 4) with Var x = 0.01, Var y = 0.04, Cov = 0.005: G = (1/4, −2/16).
    cov = np.array([[0.01, 0.005], [0.005, 0.04]])
    g = np.array([0.25, -0.125])
    expected = g[0] ** 2 * 0.01 + 2 * g[0] * g[1] * 0.005 + g[1] ** 2 * 0.04
    assert delta_method(g, cov)[0, 0] == pytest.approx(expected)


def test_ols_sandwich_is_white_at_lag_zero():
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 3.0, 2.0])
    beta, cov = ols_sandwich(x, y, lag=0)
    assert beta[0] == pytest.approx(13.0 / 14.0)  # Σxy/Σx²
    e = y - 13.0 / 14.0 * x
    assert cov[0, 0] == pytest.approx(np.sum(x**2 * e**2) / 14.0**2)  # Σx²e²/(Σx²)²
    # With an intercept, the sandwich of the gradient equals the OLS one.
    design = np.column_stack([np.ones(3), x])
    coefficients, cov2 = ols_sandwich(design, y, lag=0)
    assert coefficients == pytest.approx(np.linalg.lstsq(design, y, rcond=None)[0])
    residual = y - design @ coefficients
    bread = np.linalg.inv(design.T @ design)
    white = bread @ (design.T * residual**2) @ design @ bread
    assert cov2 == pytest.approx(white)
    assert sandwich(design, residual, lag=0) == pytest.approx(white)


# ----------------------------------------------------------------------------------------------------- fill curve


def test_fill_fit_on_an_exact_exponential():
    # 100 steps: 20 reach exactly 0.2, 10 reach 0.7 and 10 reach 1.2 ticks; Λ̂ = 0.4, 0.2, 0.1 at 0, ½, 1 and only
    # 0 orders reach 1.5, so the grid stops at 1: the fit is exact with k = 2·ln 2.
    depth = np.full((100, 2), -np.inf)
    depth[:20, 0] = 0.2
    depth[20:30, 1] = 0.7
    depth[30:40, 0] = 1.2
    visible = np.zeros(100)
    visible[:50] = 1.0  # π̂ = 0.5, so A_raw = 0.4/0.5
    fit = fit_fill(depth, 5.0, visible=visible)
    assert fit.delta.tolist() == [0.0, 0.5, 1.0]
    assert fit.rate.tolist() == pytest.approx([0.4, 0.2, 0.1])
    assert fit.reached.tolist() == [40, 20, 10]
    assert fit.k.value == pytest.approx(2.0 * math.log(2.0))
    assert fit.a.value == pytest.approx(0.4)
    assert fit.a_raw is not None and fit.a_raw.value == pytest.approx(0.8)
    assert fit.largest_log_residual == pytest.approx(0.0, abs=1e-12)
    # The SE of k: the delta method on the HAC covariance of (y(0), y(½), y(1)), with a numerical gradient.
    y = (depth[:, :, None] >= fit.delta).sum(axis=1).astype(float)
    means, cov = hac_mean(y)

    def slope(m):
        return -np.polyfit(fit.delta, np.log(m), 1)[0]

    gradient = np.array([(slope(means + h) - slope(means - h)) / 2e-7 for h in np.eye(3) * 1e-7])
    assert fit.k.se == pytest.approx(math.sqrt(delta_method(gradient, cov)[0, 0]), rel=1e-5)
    # δ_fit,max cuts the grid; fewer than three points is an error.
    with pytest.raises(ValueError, match="2 grid points"):
        fit_fill(depth, 0.5)
    depth[30:40, 0] = 0.7  # now only 0 reach 1: two points
    with pytest.raises(ValueError, match=f"at least {MIN_REACHED} orders"):
        fit_fill(depth, 5.0)


def test_impact_profile_least_squares():
    rng = np.random.default_rng(3)
    side = rng.choice([-1, 0, 1], size=400)
    size = np.where(side != 0, rng.integers(1, 10, size=400), 0)
    change = 0.3 * side * np.where(size > 0, size, 1) ** 0.5
    impact = fit_impact(change, side, size)
    assert impact.kappa.value == pytest.approx(0.3, abs=1e-6)
    assert impact.beta.value == pytest.approx(0.5, abs=1e-5)
    assert not impact.beta_fixed and impact.parameters == 2
    # β fixed at 1: κ is the OLS slope through the origin, Σ x·ΔP / Σ x², by hand on three steps.
    fixed = fit_impact(np.array([1.0, -2.0, 0.5]), np.array([1, -1, 0]), np.array([2, 3, 0]), beta=1.0)
    assert fixed.kappa.value == pytest.approx((2 * 1.0 + 3 * 2.0) / (4 + 9))
    assert fixed.beta.value == 1.0 and fixed.beta_fixed
    # Every trade of one size: β is not identified and is fixed at 1.
    assert fit_impact(change, side, np.where(side != 0, 4, 0)).beta_fixed


def test_jump_split_by_hand():
    # τ = 1 − 2cφ(c)/(2Φ(c) − 1) at c = 4: 1 − 8·0.000133830/0.999936658.
    from agents.calibration.calibrate import _truncated_variance

    assert _truncated_variance(CLIP) == pytest.approx(1.0 - 8.0 * 0.00013383022576488537 / 0.9999366575163338)
    rng = np.random.default_rng(0)
    residual = 0.5 * rng.standard_normal(20_000)
    jumps = rng.choice(20_000, size=100, replace=False)
    residual[jumps] += 6.0 * rng.choice([-1.0, 1.0], size=100)
    split = split_jumps(residual)
    assert split.used
    assert split.flagged == pytest.approx(100, abs=3)
    assert split.jump_prob.value == pytest.approx(0.005, abs=0.0002)
    assert abs(split.sigma.z(0.5)) < 3.0 and abs(split.jump_size.z(6.0)) < 3.0
    quiet = split_jumps(np.where(np.arange(100) % 20 == 0, 3.0, 0.0))  # no Gaussian core: σ → 0, not used
    assert quiet.flagged == 5 and quiet.sigma.value == 0.0 and not quiet.used


# --------------------------------------------------------------------------------------- the normalisation of A


def two_sided_tape(steps: int = 400, k: float = 1.0, seed: int = 0) -> Tape:
    """Every step holds a buy and a sell reaching an Exp(k) depth from a constant mid of 100: (πA)^ ≈ 2 > 1."""
    rng = np.random.default_rng(seed)
    n = np.repeat(np.arange(steps), 2)
    side = np.tile([1, -1], steps)
    depth = rng.exponential(1.0 / k, size=2 * steps)
    trades = Trades(1.0 + n + 0.5, 100.0 + side * depth, np.ones(2 * steps), side, np.arange(2 * steps))
    return Tape(trades, Quotes(np.array([0.5]), np.array([99.5]), np.array([100.5])), 0.5, 1.0 + steps)


def test_normalisation_when_the_rate_at_the_mid_exceeds_one():
    calibration = calibrate(to_steps(two_sided_tape(), ModelUnits(1.0, 1.0, 1.0)), 5.0)
    assert calibration.pi_A.value > 1.0
    assert calibration.pi.value == 1.0 and calibration.A.value == 1.0
    assert "shorten dt" in calibration.normalisation and calibration.notes
    assert calibration.diagnostics.both_sides_steps == calibration.N
    kwargs = calibration.model_kwargs()
    assert kwargs["pi"] == 1.0 and kwargs["A"] == 1.0 and kwargs["sizes"] == [1] and kwargs["size_probs"] == [1.0]
    make_params(**kwargs)


def test_calibrate_refuses_tapes_it_cannot_use():
    empty = Tape(Trades.empty(), Quotes(np.array([0.5]), np.array([99.5]), np.array([100.5])), 0.5, 30.0)
    with pytest.raises(ValueError, match="0 steps with a trade"):
        calibrate(to_steps(empty, ModelUnits(1.0, 1.0, 1.0)))
    with pytest.raises(ValueError, match="delta_fit_max=0.5 is invalid"):
        calibrate(to_steps(two_sided_tape(), ModelUnits(1.0, 1.0, 1.0)), 0.5)
    with pytest.raises(ValueError, match="I_max=0 is invalid"):
        calibrate(to_steps(two_sided_tape(), ModelUnits(1.0, 1.0, 1.0)), I_max=0)
    with pytest.raises(ValueError, match="reward='pnl' is invalid"):
        calibrate(to_steps(two_sided_tape(), ModelUnits(1.0, 1.0, 1.0)), reward="pnl")


# ---------------------------------------------------------------------------------------------- the recovery test

RECOVERY_SETS: dict[int, dict[str, Any]] = {  # MODEL.md §10.4
    1: {
        "pi": 0.8, "A": 0.9, "k": 2.0, "p_buy": 0.5, "momentum": 0.0, "sizes": tuple(range(1, 10)),
        "size_probs": None, "kappa": 0.05, "impact_exponent": 1.0, "sigma": 0.3, "jump_prob": 0.0, "jump_size": 0.0,
    },
    2: {
        "pi": 0.3, "A": 0.7, "k": 1.2, "p_buy": 0.55, "momentum": 0.3, "sizes": (1, 2, 3, 4, 5),
        "size_probs": (0.4, 0.25, 0.15, 0.12, 0.08), "kappa": 0.2, "impact_exponent": 0.5, "sigma": 0.5,
        "jump_prob": 0.01, "jump_size": 3.0,
    },
}  # fmt: skip


def recovery_z(which: int, tapes: int, steps: int) -> dict[str, np.ndarray]:
    """``z = (estimate − truth)/SE`` of every target of §10.4 over ``tapes`` simulated tapes of ``steps`` steps."""
    p = RECOVERY_SETS[which]
    params = make_params(P0=1000.0, **p)  # the mid stays far above 0 over the tape
    probs = p["size_probs"] or (1.0 / len(p["sizes"]),) * len(p["sizes"])
    z: dict[str, list[float]] = {}
    for seed in range(tapes):
        tape = simulate_tape(params, steps, seed)
        c = calibrate(to_steps(tape, ModelUnits(1.0, 1.0, 1.0)), delta_fit_max=5.0)
        d = c.diagnostics
        assert d.fill_ask is not None and d.fill_bid is not None
        pairs = {
            "pi_visible": (c.pi_visible, p["pi"] * p["A"]),
            "pi_A": (c.pi_A, p["pi"] * p["A"]),
            "A_raw": (c.A_raw, 1.0),
            "k": (c.k, p["k"]),
            "k_ask": (d.fill_ask.k, p["k"]),
            "k_bid": (d.fill_bid.k, p["k"]),
            "k_mle": (d.k_mle, p["k"]),
            "p_buy": (c.p_buy, p["p_buy"]),
            "momentum": (c.momentum, p["momentum"]),
            "mean_size": (c.mean_size, float(np.dot(p["sizes"], probs))),
            "kappa": (c.impact.kappa, p["kappa"]),
            "beta": (c.impact.beta, p["impact_exponent"]),
            "sigma_total": (c.sigma_total, math.sqrt(p["sigma"] ** 2 + p["jump_prob"] * p["jump_size"] ** 2)),
        }
        for size, prob in zip(p["sizes"], probs, strict=True):
            pairs[f"P(Q={size})"] = (c.size_probs[c.sizes.index(size)], prob)
        if p["jump_prob"] > 0.0:
            assert c.jumps.used
            pairs.update(
                sigma=(c.jumps.sigma, p["sigma"]),
                jump_prob=(c.jumps.jump_prob, p["jump_prob"]),
                jump_size=(c.jumps.jump_size, p["jump_size"]),
            )
        for name, (estimate, truth) in pairs.items():
            z.setdefault(name, []).append(estimate.z(truth))
    return {name: np.asarray(values) for name, values in z.items()}


def check_recovery(z: dict[str, np.ndarray], coverage: float, bias: float, spread: tuple[float, float]) -> None:
    failures = []
    for name, values in z.items():
        covered, mean, sd = np.mean(np.abs(values) <= 1.96), values.mean(), values.std(ddof=1)
        if covered < coverage or abs(mean) > bias or not spread[0] <= sd <= spread[1]:
            failures.append(f"{name}: coverage {covered:.2f}, mean z {mean:+.2f}, sd z {sd:.2f}")
    assert not failures, failures


@pytest.mark.parametrize("which", [1, 2])
def test_recovery_small(which):
    # M = 20 tapes of N = 2000 steps, loose criteria: the SEs are right within a factor of about 1.5.
    check_recovery(recovery_z(which, 20, 2000), coverage=0.75, bias=0.75, spread=(0.5, 1.6))


@pytest.mark.slow
@pytest.mark.parametrize("which", [1, 2])
def test_recovery_full(which):
    # MODEL.md §10.4's criteria on M = 100 tapes (the reference's M) of N = 5000 steps: coverage ≥ 87/100,
    # |mean z| ≤ 0.6, sd z in [0.8, 1.25]. (J_n's z has a known selection bias, which 0.6 allows.)
    check_recovery(recovery_z(which, 100, 5000), coverage=0.87, bias=0.6, spread=(0.8, 1.25))


# ------------------------------------------------------------------------------------------------- the command


def write_tape_csv(tape: Tape, path: Path) -> Path:
    """A tape in the plain CSV format of :func:`mm_env.data.readers.read_trades_csv`."""
    quotes, trades = tape.quotes, tape.trades
    rows = [
        (t, f"{t!r},{b!r},{a!r},,,,")
        for t, b, a in zip(quotes.time.tolist(), quotes.bid.tolist(), quotes.ask.tolist(), strict=True)
    ]
    rows += [
        (t, f"{t!r},,,{p!r},{q!r},{s},{i}")
        for t, p, q, s, i in zip(
            trades.time.tolist(),
            trades.price.tolist(),
            trades.size.tolist(),
            trades.side.tolist(),
            trades.taker_id.tolist(),
            strict=True,
        )
    ]
    rows.sort(key=lambda row: row[0])
    lines = ["time,bid,ask,price,size,side,taker_id", f"{tape.start!r},,,,,,"] + [text for _, text in rows]
    lines.append(f"{tape.end!r},,,,,,")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_command_writes_keywords_that_make_the_env(tmp_path, capsys):
    from agents.cli.calibrate import main

    params = make_params(P0=1000.0, **RECOVERY_SETS[2])
    tape = simulate_tape(params, 1500, seed=11)
    path = write_tape_csv(tape, tmp_path / "tape.csv")
    out = tmp_path / "model.json"
    argv = [str(path), "--format", "csv", "--tick", "1", "--lot", "1", "--delta-max", "5", "--I-max", "20"]
    extra = ["--out", str(out), "--estimates", str(tmp_path / "estimates.json")]
    figure = importlib.util.find_spec("matplotlib") is not None
    if figure:
        extra += ["--figure", str(tmp_path / "fill.png")]
    assert main([*argv, *extra]) == 0
    assert not figure or (tmp_path / "fill.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "p_buy" in printed and "kappa(H)" in printed and "chosen, not calibrated: T=200, I_max=20" in printed
    # The CSV round trip gives the same calibration as the tape itself.
    direct = calibrate(to_steps(tape, ModelUnits(1.0, 1.0, 1.0)), 5.0, I_max=20)
    kwargs = json.loads(out.read_text())
    assert kwargs == pytest.approx(json.loads(json.dumps(direct.model_kwargs())))
    env = gym.make("mm_env/MarketMaking-v0", **kwargs)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert getattr(env.unwrapped, "params").I_max == 20  # noqa: B009
    estimates = json.loads((tmp_path / "estimates.json").read_text())
    assert estimates["k"]["value"] == pytest.approx(direct.k.value)
    path.write_text(path.read_text().replace(",1,", ",up,", 1))
    with pytest.raises(SystemExit) as exit_code:
        main(argv)
    assert exit_code.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "tape.csv, line" in error and "column 'side'" in error


# ----------------------------------------------------------------------------------------- the Bitstamp sample


@pytest.fixture(scope="module")
def sample():
    """The ob-analytics Bitstamp sample (MODEL.md §10.7) on the 1-s grid, read from the installed package."""
    spec = importlib.util.find_spec("ob_analytics")  # not imported: only its data files are read
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("ob-analytics is not installed (pip install --no-deps ob-analytics)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "_sample_data"
    if not (folder / "orders.csv.gz").exists():
        pytest.skip("this ob-analytics has no _sample_data")
    from mm_env.data.readers import read_bitstamp

    tape, book = read_bitstamp(folder)
    return tape, book, to_steps(tape, ModelUnits(dt=1.0, tick=1.0, lot=0.01))


def close(estimate, value, se):
    """Equal to MODEL.md's figures within their rounding (half a unit of the last digit shown)."""
    digits = lambda text: len(text.partition(".")[2])  # noqa: E731
    return (
        abs(estimate.value - float(value)) <= 0.5 * 10 ** -digits(value) + 1e-12
        and abs(estimate.se - float(se)) <= 0.5 * 10 ** -digits(se) + 1e-12
    )


def test_sample_book_and_grid(sample):
    tape, book, stepped = sample
    assert (book.events, book.reads, book.stale_removed, book.unknown_ids) == (314_057, 168_657, 2, 19)
    assert len(tape.trades) == 284
    assert stepped.t0 == math.ceil(tape.start) and stepped.N == 1799
    assert len(stepped.orders) == 170
    quotes = tape.quotes
    spread = quotes.ask - quotes.bid
    held = np.diff(np.append(quotes.time, tape.end))
    assert held[spread == 1.0].sum() / held.sum() == pytest.approx(0.9933, abs=5e-5)
    assert np.nansum(held * spread) / held[np.isfinite(spread)].sum() == pytest.approx(1.0252, abs=5e-5)


def test_sample_calibration_table(sample):
    _, _, stepped = sample
    whole = calibrate(stepped, delta_fit_max=20.0, delta_max=20.0)
    half = calibrate(stepped.window(0, stepped.N // 2), delta_fit_max=20.0, delta_max=20.0)
    for c, table in (
        (
            whole,
            {
                "pi": ("0.0639", "0.0064"), "p_buy": ("0.600", "0.063"), "phi": ("0.06", "0.28"),
                "mean": ("13.5", "3.9"), "k": ("0.303", "0.043"), "piA": ("0.0414", "0.0056"),
                "A": ("0.648", "0.057"), "kappa": ("1.40", "0.64"), "beta": ("0.49", "0.20"),
                "sigma": ("2.14", "0.54"),
            },
        ),
        (
            half,
            {
                "pi": ("0.0656", "0.0092"), "p_buy": ("0.797", "0.059"), "phi": ("0.00", "0.34"),
                "mean": ("11.4", "3.8"), "k": ("0.281", "0.053"), "piA": ("0.0364", "0.0065"),
                "A": ("0.554", "0.061"), "kappa": ("1.84", "0.59"), "beta": ("0.30", "0.12"),
                "sigma": ("1.54", "0.26"),
            },
        ),
    ):  # fmt: skip
        estimates = {
            "pi": c.pi_visible, "p_buy": c.p_buy, "phi": c.momentum, "mean": c.mean_size, "k": c.k, "piA": c.pi_A,
            "A": c.A, "kappa": c.impact.kappa, "beta": c.impact.beta, "sigma": c.sigma_total,
        }  # fmt: skip
        wrong = {name: estimates[name] for name, (value, se) in table.items() if not close(estimates[name], value, se)}
        assert not wrong, wrong
        assert c.A.value == c.A_raw.value and c.pi.value == c.pi_visible.value  # A_raw ≤ 1 is kept
    assert len(whole.sizes) == 29 and len(half.sizes) == 16
    assert round(whole.size_probs[0].value, 2) == 0.60 and round(half.size_probs[0].value, 2) == 0.68
    assert whole.fill.delta[-1] == 6.5 and half.fill.delta[-1] == 5.5
    d = whole.diagnostics
    assert (whole.trade_steps, d.several_orders_steps, d.both_sides_steps) == (115, 22, 2)
    assert round(d.trade_after_trade, 3) == 0.113 and round(d.trade_after_none, 3) == 0.061
    assert round(d.same_side_share, 2) == 0.77
    assert round(d.small_order_share, 2) == 0.45
    assert (round(d.binned_volume, 2), round(d.volume, 2)) == (15.76, 15.03)
    assert whole.fill.rate[:3] == pytest.approx([0.0634, 0.0634, 0.0200], abs=5e-5)
    assert round(whole.fill.largest_log_residual, 2) == 0.58 and round(half.fill.largest_log_residual, 2) == 0.73
    assert d.fill_order_mid is not None and close(d.fill_order_mid.k, "0.40", "0.05")
    assert (d.deepest_from_step_mid, d.deepest_from_order_mid) == (75.5, 17.0)
    assert round(d.quiet_mid_share, 2) == 0.92
    assert not whole.jumps.used and whole.jumps.sigma.value == 0.0
    assert round(whole.jumps.flagged / whole.N, 3) == 0.115
    kappas = {h: round(e.value, 2) for h, e in d.kappa_by_horizon.items()}
    assert (kappas[1], kappas[5], kappas[10], kappas[30]) == (1.40, 1.51, 2.39, 2.37)
    # The shallow refit (δ ≤ 2 ticks): A_raw > 1, so A = 1 and π = (πA)^.
    shallow = calibrate(stepped, delta_fit_max=2.0)
    assert close(shallow.k, "0.76", "0.09") and round(shallow.A_raw.value, 2) == 1.02
    assert shallow.A.value == 1.0 and round(shallow.pi.value, 4) == 0.0653
    make_params(**whole.model_kwargs())


def test_fill_fit_refuses_grids_beyond_the_limit():
    from agents.calibration.calibrate import MAX_FILL_POINTS

    depth = np.full((100, 2), -np.inf)
    depth[:20, 0] = 150.0  # 20 orders 150 ticks deep: 301 grid points up to δ_fit,max = 200
    with pytest.raises(ValueError, match=f"at most {MAX_FILL_POINTS} points"):
        fit_fill(depth, 200.0)
    assert len(fit_fill(depth, 100.0).delta) == MAX_FILL_POINTS
