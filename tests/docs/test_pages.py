"""The docs pages themselves: snippets in sync, links that resolve, names that exist."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from django.core.management import load_command_class

from s2s_auth.conf import DEFAULTS
from tests.docs.snippets import DOCS, SNIPPETS

PAGES = sorted(DOCS.rglob("*.md"))
OURS = [
    "index.md",
    "quickstart.md",
    "choosing.md",
    "identity-service.md",
    "operations.md",
    "revocation.md",
    "mechanisms/mtls.md",
    "mechanisms/service-jwt.md",
    "mechanisms/http-signatures.md",
    "mechanisms/access-tokens.md",
    "mechanisms/api-keys.md",
    "mechanisms/user-context.md",
]
#: Pages other work generates or owns; links to them may precede them.
NOT_YET = {"benchmarks.md", "threat-matrix.md", "batch-jobs.md", "deployment.md"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
MARKER = re.compile(r"<!-- snippet: ([\w.-]+\.py) -->\n$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def rel(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


def python_blocks(text: str):
    """(snippet name or None, code) of every ```python block."""
    for match in FENCE.finditer(text):
        if match.group(1) != "python":
            continue
        before = text[: match.start()]
        marker = MARKER.search(before[-200:])
        yield (marker.group(1) if marker else None), match.group(2)


def without_code(text: str) -> str:
    text = FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_\[\]()]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("name", OURS)
def test_page_exists(name):
    assert (DOCS / name).is_file()


@pytest.mark.parametrize("page_name", OURS)
def test_python_blocks_are_the_tested_snippets(page_name):
    page = DOCS / page_name
    for name, code in python_blocks(page.read_text()):
        assert name is not None, (
            f"{rel(page)}: a ```python block without <!-- snippet: NAME.py --> before it; "
            "code on these pages must come from docs/snippets/ and be run by tests/docs/"
        )
        path = SNIPPETS / name
        assert path.is_file(), f"{rel(page)}: no snippet file docs/snippets/{name}"
        assert code == path.read_text(), f"{rel(page)}: the {name} block differs from the file"


def test_every_snippet_is_shown_and_run():
    shown = {name for page in PAGES for name, _ in python_blocks(page.read_text())}
    tests = (Path(__file__).parent / "test_snippets.py").read_text()
    tests += (Path(__file__).parent / "urls.py").read_text()
    # The quickstart's steps run in a fresh virtualenv (it lists the snippets they use).
    tests += (Path(__file__).parents[1] / "package" / "test_quickstart.py").read_text()
    for path in sorted(SNIPPETS.glob("*.py")):
        assert path.name in shown, f"docs/snippets/{path.name} is on no page"
        assert f'"{path.stem}"' in tests, f"docs/snippets/{path.name} is run by no test"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_relative_links_resolve(page):
    for target in LINK.findall(without_code(page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page
        if not resolved.exists():
            assert resolved.parent == DOCS and resolved.name in NOT_YET, (
                f"{rel(page)}: broken link {target}"
            )
            continue
        if fragment and resolved.suffix == ".md":
            assert fragment in anchors(resolved), f"{rel(page)}: no anchor #{fragment} in {target}"


def test_the_link_checker_catches_a_broken_link(tmp_path):
    page = DOCS / "index.md"
    broken = "[x](mechanisms/nope.md) [y](choosing.md#no-such-heading)"
    for target in LINK.findall(broken):
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / path_part).resolve()
        missing = not resolved.exists() or fragment not in anchors(resolved)
        assert missing, target


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_settings_named_exist(page):
    """``S2S_AUTH["KEY"]`` and the backticked KEYS of a "## Settings" section."""
    text = page.read_text()
    names = set(re.findall(r'S2S_AUTH\["([A-Z_]+)"\]', text))
    section = re.search(r"^## Settings\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if section:
        names |= set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", section.group(1)))
    unknown = names - set(DEFAULTS) - {"CACHES"}
    assert not unknown, f"{rel(page)}: not S2S_AUTH settings: {sorted(unknown)}"


COMMANDS = {
    "s2s_pki": "s2s_auth",
    "s2s_service": "s2s_auth",
    "s2s_audit": "s2s_auth",
    "s2s_keys": "s2s_auth.issuer",
}


def subcommands(command: str) -> set[str]:
    parser = load_command_class(COMMANDS[command], command).create_parser("manage.py", command)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_management_commands_named_exist(page):
    for command, sub in re.findall(
        r"\b(s2s_pki|s2s_service|s2s_audit|s2s_keys) ([a-z-]+)", page.read_text()
    ):
        if sub in {"and", "or", "with", "is", "the"}:
            continue
        assert sub in subcommands(command), f"{rel(page)}: `{command} {sub}` does not exist"
