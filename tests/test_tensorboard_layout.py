"""TensorBoard's Custom Scalars layout: anchored patterns, one quantity per chart, each family's charts its own.

TensorBoard matches a chart's patterns against a run's tags with ``re.match`` (from the start of the tag only) and
draws every match of every run; it colours the series by run, so within a run only the marker shape tells them apart.
The end-to-end tests train a one-MM run and a game run into one log folder, as ``runs/`` holds both after a user
tries each, and read back the layouts and the scalar tags the runs actually logged.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import TINY_TRAIN, run_command
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2

from agents.cli.train import main as train_main
from agents.training.tensorboard import TRAINING_CATEGORY, game_layout, market_maker_layout, only

GAME = ["--env", "mm_env/CompetingMarketMakers-v0", "--env-kwargs", "self_play=True", "T=20", "I_max=10"]
LAYOUTS = {
    "one MM vs the DP": market_maker_layout("dp"),
    "one MM vs the best heuristic": market_maker_layout("best_heuristic"),
    "two MMs, exact": game_layout(2),
    "three MMs, no exact solution": game_layout(3, exact=False),
}


def patterns(layout) -> list[str]:
    return [pattern for charts in layout.values() for _, tags in charts.values() for pattern in tags]


def matches(pattern: str, tags: set[str]) -> set[str]:
    """The tags a chart's pattern draws, as TensorBoard finds them."""
    return {tag for tag in tags if re.match(pattern, tag)}


@pytest.mark.parametrize("name", LAYOUTS)
def test_every_pattern_is_anchored_and_draws_its_tag_alone(name):
    for pattern in patterns(LAYOUTS[name]):
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
        tag = pattern[1:-1].replace("\\", "")
        assert matches(pattern, {tag, f"{tag}_mm_0", f"{tag}_mm_1", f"x{tag}"}) == {tag}


def test_only_escapes_what_a_regex_would_read_otherwise():
    assert only("eval/exact_return") == "^eval/exact_return$"
    assert re.match(only("a.b"), "a.b") and not re.match(only("a.b"), "axb")


def test_both_families_share_the_training_charts_identically():
    # Identical charts in a category of the same title: TensorBoard shows them once, every run's series on each.
    shared = {str(layout[TRAINING_CATEGORY]) for layout in LAYOUTS.values()}
    assert len(shared) == 1
    for layout in LAYOUTS.values():
        (own,) = set(layout) - {TRAINING_CATEGORY}
        assert not set(layout[own]) & set(layout[TRAINING_CATEGORY])  # every chart title tells what it is


@pytest.fixture(scope="module")
def shared_log_dir(tmp_path_factory) -> Path:
    log_dir = tmp_path_factory.mktemp("runs")
    for args in ([], GAME):
        result = run_command(train_main, *TINY_TRAIN, *args, "--log-dir", str(log_dir))
        assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in log_dir.iterdir()) == [
        "ppo_CompetingMarketMakers-v0_1",
        "ppo_MarketMaking-v0_1",
    ]
    return log_dir


def logged(run_dir: Path) -> tuple[dict[str, dict[str, list[str]]], set[str]]:
    """The custom-scalars layout a run wrote (category → chart title → patterns) and the scalar tags it logged."""
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    (tag,) = accumulator.PluginTagToContent("custom_scalars")
    layout = layout_pb2.Layout.FromString(accumulator.Tensors(tag)[0].tensor_proto.string_val[0])
    charts = {
        category.title: {chart.title: list(chart.multiline.tag) for chart in category.chart}
        for category in layout.category
    }
    return charts, set(accumulator.Tags()["scalars"])


@pytest.fixture(scope="module")
def runs(shared_log_dir) -> dict[str, tuple[dict[str, dict[str, list[str]]], set[str]]]:
    return {
        "one MM": logged(shared_log_dir / "ppo_MarketMaking-v0_1"),
        "game": logged(shared_log_dir / "ppo_CompetingMarketMakers-v0_1"),
    }


def test_the_runs_write_the_layouts_of_their_family(runs):
    def patterns_by_chart(layout):
        return {category: {title: tags for title, (_, tags) in charts.items()} for category, charts in layout.items()}

    assert runs["one MM"][0] == patterns_by_chart(market_maker_layout("dp"))
    assert runs["game"][0] == patterns_by_chart(game_layout(2))


@pytest.mark.parametrize("family", ["one MM", "game"])
def test_each_chart_draws_one_logged_quantity_per_run(family, runs):
    # One series per run: the colour names the run, and one quantity (one scale) per chart.
    charts, tags = runs[family]
    for category, titled in charts.items():
        for title, chart_patterns in titled.items():
            drawn = set().union(*(matches(pattern, tags) for pattern in chart_patterns))
            assert len(drawn) == 1, f"{category} / {title} draws {sorted(drawn)}"


@pytest.mark.parametrize(("family", "other"), [("one MM", "game"), ("game", "one MM")])
def test_a_familys_own_charts_draw_none_of_the_other_familys_tags(family, other, runs):
    charts, _ = runs[family]
    other_charts, other_tags = runs[other]
    for category, titled in charts.items():
        if category == TRAINING_CATEGORY:  # the shared charts: the same quantities in both, merged into one
            assert titled == other_charts[TRAINING_CATEGORY]
            continue
        assert category not in other_charts
        for title, chart_patterns in titled.items():
            stray = set().union(*(matches(pattern, other_tags) for pattern in chart_patterns))
            assert not stray, f"{category} / {title} also draws the {other} run's {sorted(stray)}"


def test_the_shared_charts_draw_the_same_quantity_for_both_families(runs):
    (_, one_mm_tags), (_, game_tags) = runs["one MM"], runs["game"]
    for title, chart_patterns in runs["one MM"][0][TRAINING_CATEGORY].items():
        drawn = set().union(*(matches(pattern, one_mm_tags | game_tags) for pattern in chart_patterns))
        assert len(drawn) == 1, f"{title} draws {sorted(drawn)}"
