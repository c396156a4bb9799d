"""The executable steps of a docs page: fenced blocks marked with an HTML comment.

A block is a step when the line before its fence (or before its ``<!-- snippet: -->``
marker) is one of::

    <!-- quickstart: run in DIR -->      a shell block, run with bash in DIR
    <!-- quickstart: serve in DIR -->    a shell block started in the background (a server)
    <!-- quickstart: append FILE -->     a code block appended to FILE
    <!-- quickstart: create FILE -->     a code block written to the new FILE

DIR and FILE are relative to the directory the steps run in. The markers are
invisible on the rendered page, so the reader sees exactly the code that is run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
MARKER = re.compile(
    r"<!-- quickstart: (?P<action>[a-z]+) (?:in )?(?P<target>\S+) -->\n"
    r"(?:<!-- snippet: (?P<snippet>[\w.-]+)\.py -->\n)?$"
)
ACTIONS = {"run": "sh", "serve": "sh", "append": "python", "create": "python"}


@dataclass(frozen=True)
class Step:
    action: str
    target: str
    code: str
    snippet: str | None = None


def steps(text: str) -> list[Step]:
    """The marked blocks of ``text``, in order."""
    found = []
    for fence in FENCE.finditer(text):
        marker = MARKER.search(text, max(0, fence.start() - 300), fence.start())
        if marker is None or marker.end() != fence.start():
            continue
        action, language = marker["action"], fence.group(1)
        if action not in ACTIONS:
            raise ValueError(f"unknown quickstart action {action!r}")
        if language != ACTIONS[action]:
            raise ValueError(f"quickstart: {action} needs a ```{ACTIONS[action]} block")
        found.append(Step(action, marker["target"], fence.group(2), marker["snippet"]))
    return found


def page_steps(path: Path) -> list[Step]:
    return steps(path.read_text())
