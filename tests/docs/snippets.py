"""Load the Python files of docs/snippets/ as modules (they are not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"


def load(name: str) -> ModuleType:
    """``docs/snippets/<name>.py`` as module ``docs_snippets.<name>`` (imported once)."""
    module_name = f"docs_snippets.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = SNIPPETS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def source(name: str) -> str:
    """The text of ``docs/snippets/<name>.py``."""
    return (SNIPPETS / f"{name}.py").read_text()


def fresh(name: str) -> ModuleType:
    """A new copy of the snippet module (module-level state such as clients reset)."""
    sys.modules.pop(f"docs_snippets.{name}", None)
    return load(name)
