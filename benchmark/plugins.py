"""Methods and datasets from other installed packages, and where every registered one's YAML lives.

A package adds a method or a dataset by declaring an entry point in the group `debiasbench.methods`
or `debiasbench.datasets` whose value is a module; importing that module registers it
(`@register_method("name")` / `@register_dataset("name")`), with its YAML beside its code
(`<module folder>/<name>.yaml`, or the `config=` path given to the decorator). The built-in ones
keep theirs under configs/. `--list` shows where each comes from.

    # pyproject.toml of a plugin package
    [project.entry-points."debiasbench.methods"]
    focal = "debiasbench_example.focal"
"""
from __future__ import annotations

import importlib.metadata
import inspect
from pathlib import Path
from typing import Any

from benchmark.errors import BenchError

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"
GROUPS = {"methods": "debiasbench.methods", "datasets": "debiasbench.datasets"}
CONFIG_PATHS: dict[str, dict[str, Path]] = {"methods": {}, "datasets": {}}
ORIGINS: dict[str, dict[str, str]] = {"methods": {}, "datasets": {}}
_loaded: set[str] = set()


def config_path(kind: str, name: str) -> Path:
    """The YAML of registered method or dataset `name` (kind "methods" or "datasets")."""
    return CONFIG_PATHS[kind].get(name) or CONFIG_ROOT / kind / f"{name}.yaml"


def origin(kind: str, name: str) -> str:
    return ORIGINS[kind].get(name, "built-in")


def register_config(kind: str, name: str, obj: Any, config: str | Path | None) -> None:
    """At registration: find the YAML (configs/<kind>/<name>.yaml for the built-in ones; the given
    path, else <name>.yaml beside the module, for a plugin) and record where `name` comes from."""
    package = obj.__module__.split(".")[0]
    builtin = package == kind
    if config is not None:
        path = Path(config)
    elif builtin:
        path = CONFIG_ROOT / kind / f"{name}.yaml"
    else:
        path = Path(inspect.getfile(obj)).resolve().parent / f"{name}.yaml"
    if not path.is_file():
        where = f"configs/{kind}/{name}.yaml" if builtin else f"{path} (beside its module, or pass config= to the decorator)"
        raise RuntimeError(f"{kind[:-1]} {name!r} has no config: add {where}")
    CONFIG_PATHS[kind][name] = path
    if not builtin:
        ORIGINS[kind][name] = f"plugin {package}"


def load_plugins(kind: str) -> None:
    """Import every installed entry point of the kind's group, once; a failure is one clear error."""
    if kind in _loaded:
        return
    _loaded.add(kind)
    for entry in importlib.metadata.entry_points(group=GROUPS[kind]):
        dist = getattr(entry.dist, "name", None) or "an installed package"
        try:
            entry.load()
        except Exception as e:  # the plugin's own error, whatever it is, in one line
            raise BenchError(f"plugin {entry.name!r} of {dist} (entry point {GROUPS[kind]}: {entry.value}) failed to load: "
                             f"{type(e).__name__}: {e}; fix or uninstall {dist}") from None
