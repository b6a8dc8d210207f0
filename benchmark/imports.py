"""Our top-level `datasets` and `methods` packages, never a same-named package from elsewhere.

Hugging Face's `datasets` shares our package's name. When both are installed in one environment,
whichever comes first on sys.path wins; this check turns that into one clear error.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from benchmark.errors import BenchError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _origin(name: str) -> str | None:
    if name in sys.modules:
        return getattr(sys.modules[name], "__file__", None)
    spec = importlib.util.find_spec(name)
    return spec.origin if spec else None


def check_project_package(name: str) -> None:
    origin = _origin(name)
    if origin is None or Path(origin).resolve().parent.parent != PROJECT_ROOT:
        raise BenchError(
            f"'import {name}' resolves to {origin or 'nothing'}, not DebiasBench's {PROJECT_ROOT / name}: "
            f"another package named {name!r} (Hugging Face's `datasets`?) shadows ours; uninstall it "
            f"(pip uninstall {name}) or use a separate virtual environment for DebiasBench"
        )


def project_packages() -> tuple[ModuleType, ModuleType]:
    """(datasets, methods) of this project, checked."""
    for name in ("datasets", "methods"):
        check_project_package(name)
    return importlib.import_module("datasets"), importlib.import_module("methods")
