"""Generate the site's pages that come from the code (run by mkdocs-gen-files at every build).

- ``envs/<name>.md``: one page per registered environment id, and one for the PettingZoo env, in Gymnasium's layout
  (the summary table, then the class docstring's sections: description, action and observation spaces, rewards,
  starting state, episode end, info, arguments, version history). The spaces in the table are read from an
  instance made by the id, so they cannot drift from the code.
- ``reference/``: one API page per module of ``mm_env`` and ``agents``, rendered by mkdocstrings, with its
  navigation in ``reference/SUMMARY.md``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import griffe
import gymnasium as gym
import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).parent))
from sphinx_roles import SphinxRoles  # noqa: E402

import mm_env  # noqa: E402,F401  (registers the ids)

ROOT = Path(__file__).parents[2]
PACKAGES = ("mm_env", "agents")

loaded = {name: griffe.load(name, extensions=griffe.load_extensions(SphinxRoles)) for name in PACKAGES}


def docstring(path: str) -> str:
    """The docstring of ``path`` (``package.module.Object``), its roles made links."""
    package = loaded[path.split(".", 1)[0]]
    obj = package[path.split(".", 1)[1]]
    return obj.docstring.value if obj.docstring is not None else ""


def env_page(title: str, class_path: str, rows: list[tuple[str, str]], lead: str = "") -> str:
    """A page in Gymnasium's layout: the summary table, then the class docstring's sections."""
    text = docstring(class_path)
    summary, _, body = text.partition("\n")
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    cls = class_path.rsplit(".", 1)[-1]
    return (
        f"# {title}\n\n{summary}\n\n| | |\n|---|---|\n{table}\n| Class | [`{cls}`][{class_path}] |\n\n"
        f"{lead}{body.strip()}\n"
    )


def space(value: object) -> str:
    """A space as code."""
    return f"`{value}`"


LEADS = {
    mm_env.ARTICLE_ID: (
        'This id is the class below with `preset="article"`: the article\'s own model ([MODEL.md §5](../MODEL.md)), '
        "in which every order fills and the reward is `(ask − bid)·Q − lam·I'²`. Every keyword below applies; "
        '`preset="article_low_volatility"` and the other scenarios of `mm_env.ARTICLE_SCENARIOS` give the '
        "article's four scenarios.\n\n"
    ),
}
"""What a page adds before the class docstring, for an id that is a class with preset keywords."""


def slug(env_id: str) -> str:
    """``mm_env/ArticleMarketMaker-v0`` → ``article-market-maker`` (a new id gets a page; the nav must list it)."""
    name = env_id.split("/", 1)[1].rsplit("-v", 1)[0]
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def make_for_page(env_id: str) -> gym.Env:
    """An instance of the id, for its page's table (the spaces are read from it)."""
    if env_id == mm_env.COMPETING_ID:  # the spaces do not depend on the opponent; the article's rule needs no solve
        return gym.make(env_id, opponent="article")
    if env_id == mm_env.REPLAY_ID:  # a recorded market: a tiny tape made by the model itself
        from agents.calibration.simulate import simulate_tape
        from mm_env.data import ModelUnits, to_steps

        tape = simulate_tape(mm_env.make_params(P0=1000.0), 10, seed=0)
        return gym.make(env_id, tape=to_steps(tape, ModelUnits(dt=1.0, tick=1.0, lot=1.0)))
    return gym.make(env_id)


IMPORT_ROWS = {mm_env.REPLAY_ID: '`gymnasium.make("mm_env/Replay-v0", tape=stepped)` after `import mm_env`'}

for env_id in [env_id for env_id in gym.registry if env_id.startswith("mm_env/")]:
    spec = gym.spec(env_id)
    env = make_for_page(env_id)
    entry = spec.entry_point
    assert isinstance(entry, str)
    module, _, name = entry.partition(":")
    rows = [
        ("Action Space", space(env.action_space)),
        ("Observation Space", space(env.observation_space)),
        ("import", IMPORT_ROWS.get(env_id, f'`gymnasium.make("{env_id}")` after `import mm_env`')),
    ]
    if spec.vector_entry_point is not None:
        rows.append(("vector", f'`gymnasium.make_vec("{env_id}", num_envs=N)` (natively batched)'))
    env.close()
    short = env_id.split("/", 1)[1]
    with mkdocs_gen_files.open(f"envs/{slug(env_id)}.md", "w") as page:
        page.write(env_page(short, f"{module}.{name}", rows, LEADS.get(env_id, "")))

try:
    from mm_env.competition import parallel_env

    pz = parallel_env()
    agent = pz.possible_agents[0]
    pz_rows = [
        ("Agents", ", ".join(f"`{a}`" for a in pz.possible_agents) + " (`num_market_makers`)"),
        ("Action Space", space(pz.action_space(agent))),
        ("Observation Space", space(pz.observation_space(agent))),
        ("import", "`from mm_env.competition import parallel_env` (`env()` is the AEC form)"),
    ]
    pz.close()
    with mkdocs_gen_files.open("envs/pettingzoo.md", "w") as page:
        parallel_class = "mm_env.competition.parallel.CompetitionParallelEnv"
        page.write(env_page("Competing market makers (PettingZoo)", parallel_class, pz_rows))
except ImportError as error:  # the multiagent extra is part of the docs' install; say what is missing
    raise SystemExit(f"the docs need PettingZoo (pip install -e '.[docs]'): {error}") from error

# The API reference: a page per module, in the packages' own order.
reference_nav = mkdocs_gen_files.Nav()
for package in PACKAGES:
    for path in sorted((ROOT / package).rglob("*.py")):
        module_path = path.relative_to(ROOT).with_suffix("")
        parts = tuple(module_path.parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
            doc_path = Path(*parts, "index.md")
        else:
            doc_path = module_path.with_suffix(".md")
        if any(part.startswith("_") for part in parts):
            continue
        reference_nav[parts] = doc_path.as_posix()
        with mkdocs_gen_files.open(Path("reference", doc_path), "w") as page:
            page.write(f"::: {'.'.join(parts)}\n")
        mkdocs_gen_files.set_edit_path(Path("reference", doc_path), Path("..", path.relative_to(ROOT)))

with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as nav:
    nav.writelines(reference_nav.build_literate_nav())
