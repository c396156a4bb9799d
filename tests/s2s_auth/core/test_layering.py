"""s2s_auth.core is the request-free core: no DRF, no django.http, no ORM.

Checked twice: statically (every import statement of every core module, also those
inside functions) and dynamically (a fresh interpreter with Django settings configured
imports every core module; none of the forbidden packages may end up loaded, however
indirectly).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import s2s_auth.core

CORE_DIR = Path(s2s_auth.core.__file__).resolve().parent
ROOT = CORE_DIR.parents[1]
FORBIDDEN = ("rest_framework", "django.http", "django.db")


def core_modules() -> list[str]:
    names = []
    for path in sorted(CORE_DIR.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def _is_forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def forbidden_imports(source: str, package: str = "s2s_auth.core") -> list[str]:
    """The forbidden modules ``source`` imports (any statement, any nesting depth)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from django import http" imports django.http.
            names = [f"{base}.{alias.name}" for alias in node.names]
            modules = [base] if _is_forbidden(base) else names
        else:
            continue
        found += [m for m in modules if _is_forbidden(m)]
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import rest_framework", ["rest_framework"]),
        ("from rest_framework.exceptions import APIException", ["rest_framework.exceptions"]),
        ("from django import http", ["django.http"]),
        ("def f():\n    from django.db.models import Q", ["django.db.models"]),
        ("import django.http.request as r", ["django.http.request"]),
        ("from django.core.signals import setting_changed", []),
        ("import requests, cryptography.x509", []),
        ("from django.dbx import y", []),
        ("from .. import views", []),
        ("from ...rest_framework import x", ["rest_framework"]),
    ],
)
def test_the_scanner_finds_forbidden_imports(source, expected):
    assert forbidden_imports(source) == expected


def test_the_scan_sees_every_core_module():
    modules = core_modules()
    assert "s2s_auth.core.jose" in modules
    assert "s2s_auth.core.httpsig.verifier" in modules
    assert len(modules) >= 15


@pytest.mark.parametrize("module", core_modules())
def test_core_module_imports_no_drf_http_or_orm(module):
    path = ROOT.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    assert forbidden_imports(path.read_text(), package) == []


def test_importing_every_core_module_loads_no_drf_http_or_orm():
    script = textwrap.dedent(
        f"""
        import importlib, json, sys
        from django.conf import settings
        settings.configure(S2S_AUTH={{"SERVICE_NAME": "users"}})
        for name in {core_modules()!r}:
            importlib.import_module(name)
        forbidden = {FORBIDDEN!r}
        loaded = sorted(
            m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden)
        )
        print(json.dumps({{"loaded": loaded, "core": "s2s_auth.core.jose" in sys.modules}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"loaded": [], "core": True}
