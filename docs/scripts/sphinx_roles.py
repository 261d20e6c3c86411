"""A griffe extension: the docstrings' Sphinx roles as mkdocstrings cross-references.

The code's docstrings name other objects as ``:class:`~mm_env.params.MarketParams``` (and ``:func:``, ``:meth:``,
``:mod:``, ``:attr:``, ``:data:``, ``:exc:``), which ``help()`` and editors show as they are. For the site each
becomes a link, ``[MarketParams][mm_env.params.MarketParams]``; a name without a dot is resolved in the scope of
the docstring's object. A target that is not on the site is a broken reference, and the strict build fails on it.
Private targets (a name part starting with ``_``) are not documented and stay code. Doctest blocks (``>>>`` and
the output that follows, up to a blank line) become ``pycon`` code blocks, which Markdown would otherwise read as
quotes.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

DOCTEST = re.compile(r"^>>> .*?(?:\n(?!\n).*)*(?:\n|$)", re.M)
ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([A-Za-z_][\w.]*)(\(\))?`")


def _private(path: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in path.split("."))


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring."""
        if obj.docstring is None:
            return
        text = ROLE.sub(lambda match: _link(obj, match), obj.docstring.value)
        obj.docstring.value = DOCTEST.sub(lambda match: f"```pycon\n{match.group(0).rstrip()}\n```\n", text)


def _link(obj: griffe.Object, match: re.Match[str]) -> str:
    short, name, call = match.group(1), match.group(2), match.group(3) or ""
    path = name
    if "." not in name or not name.startswith(("mm_env", "agents")):
        head, _, rest = name.partition(".")
        try:
            path = obj.resolve(head) + (f".{rest}" if rest else "")
        except griffe.NameResolutionError:
            path = name
    shown = (name.rsplit(".", 1)[-1] if short else name) + call
    if _private(path) or not path.startswith(("mm_env", "agents")):
        return f"`{shown}`"
    return f"[`{shown}`][{path}]"
