"""The issuer is an optional sub-app: it plugs into the core (a secret backend in
ready()), and nothing of the library outside it imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import s2s_auth
from s2s_auth.credentials import principals
from s2s_auth.issuer.clients import ClientSecretBackend

PACKAGE = Path(s2s_auth.__file__).parent
ISSUER = PACKAGE / "issuer"


def imported_modules(tree: ast.AST):
    """Every module an ``import``, ``from ... import`` or ``import_module("...")`` names."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def imports_issuer(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [
        name
        for name in imported_modules(tree)
        if name == "s2s_auth.issuer" or name.startswith("s2s_auth.issuer.")
    ]


def test_nothing_outside_the_issuer_imports_it():
    offenders = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if ISSUER not in path.parents and (found := imports_issuer(path))
    }
    assert offenders == {}


def test_the_scan_sees_each_way_of_importing(tmp_path):
    for source in (
        "import s2s_auth.issuer.oauth",
        "from s2s_auth.issuer import clients",
        "from s2s_auth import issuer",
        "def f():\n    from s2s_auth.issuer.models import ClientSecret",
        "importlib.import_module('s2s_auth.issuer.clients')",
    ):
        path = tmp_path / "m.py"
        path.write_text(source)
        assert imports_issuer(path), source
    path.write_text("'s2s_auth.issuer' in INSTALLED_APPS\nfrom . import issuer_like")
    assert not imports_issuer(path)


def test_ready_installs_the_secret_backend():
    assert isinstance(principals.secret_backend(), ClientSecretBackend)


def test_register_secret_backend_refuses_what_is_not_one():
    with pytest.raises(TypeError):
        principals.register_secret_backend(object())
    assert isinstance(principals.secret_backend(), ClientSecretBackend)
