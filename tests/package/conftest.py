"""The package as a user gets it: a wheel built from the library alone, and a fresh
virtualenv that installs it from the package index (pip's own cache keeps it quick)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The environment of every command a user would type: nothing of this repository.
PASSED_ON = ("HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")


def run(argv, *, cwd, env=None, timeout=600) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv} in {cwd}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """``pip wheel`` of a copy of pyproject.toml and s2s_auth/ only: the package needs
    nothing else of the repository, and the build leaves nothing in it."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copytree(
        REPO / "s2s_auth", source / "s2s_auth", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = work / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, source], cwd=work)
    (built,) = dist.glob("s2s_auth-*.whl")
    return built


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory, wheel) -> SimpleNamespace:
    """An empty virtualenv, and the environment of a shell where it is active and pip
    finds the wheel (``PIP_FIND_LINKS``, as the quickstart tells a user)."""
    work = tmp_path_factory.mktemp("venv")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=work)
    env = {k: v for k, v in os.environ.items() if k in PASSED_ON or k.startswith("PIP_")}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        VIRTUAL_ENV=str(venv),
        PIP_FIND_LINKS=" ".join(filter(None, [str(wheel.parent), env.get("PIP_FIND_LINKS")])),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONUNBUFFERED="1",
    )
    return SimpleNamespace(path=venv, python=venv / "bin" / "python", env=env)
