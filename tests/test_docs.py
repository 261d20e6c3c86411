"""The documentation: the README stays short and its example is the one the tests run, every page is reachable
from the quickstart, quoted output is what the code prints, and the release files agree on the version.

The site itself is built with warnings as errors (``mkdocs build --strict``) by the README's test command, so a
broken reference or a missing snippet fails there.
"""

from __future__ import annotations

import contextlib
import io
import re
import runpy
from pathlib import Path

import pytest
import yaml

import mm_env

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(text: str, name: str) -> str:
    """The lines between a snippet's ``--8<-- [start:name]`` and ``[end:name]`` markers."""
    match = re.search(rf"--8<-- \[start:{name}\][^\n]*\n(.*?)\n[^\n]*--8<-- \[end:{name}\]", text, re.S)
    assert match, f"no snippet section {name!r}"
    return match.group(1)


def test_readme_is_at_most_150_lines():
    assert len(README.splitlines()) <= 150


def test_readme_example_is_the_quickstart_example():
    example = section((ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8"), "quickstart")
    assert f"```python\n{example}\n```" in README


def test_quoted_quickstart_output_is_what_it_prints():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
    printed = out.getvalue().strip()
    assert printed == (DOCS / "snippets" / "quickstart.txt").read_text(encoding="utf-8").strip()
    assert f"prints `{printed}`" in README
    assert "99.74% of the DP optimum (111.14)" in printed


def nav_pages(nav: list) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_page_is_in_the_navigation_and_linked_from_the_quickstart():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    pages = nav_pages(config["nav"])
    written = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "scripts" not in p.parts}
    assert written <= set(pages), f"pages missing from the navigation: {written - set(pages)}"
    quickstart = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", quickstart))
    for page in pages:
        if page == "index.md":
            continue
        target = "reference/mm_env/index.md" if page == "reference/" else page
        assert target in linked, f"{page} is not linked from the quickstart"


def test_release_files_agree_on_the_version():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert str(citation["version"]) == mm_env.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    first = re.search(r"^## \[([^\]]+)\]", changelog, re.M)
    assert first and first.group(1) == mm_env.__version__
    titles = [ref["title"] for ref in citation["references"]]
    assert any("inventory" in title.lower() for title in titles)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_doc_pages_name_no_missing_repository_file(page):
    # Paths written as code in a page (`examples/x.py`, `sweeps/example.yml`) exist in the repository.
    text = (DOCS / page).read_text(encoding="utf-8")
    named = r"`((?:examples|sweeps|benchmarks|tests|docs|agents|mm_env)/[\w./-]+\.(?:py|yml|png|md))`"
    for path in re.findall(named, text):
        assert (ROOT / path).exists(), f"{page} names {path}, which does not exist"
