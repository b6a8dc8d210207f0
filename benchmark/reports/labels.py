"""Hyperparameter settings in words, for table cells and legends: nested settings flattened to
dotted keys, and one value as the method's YAML `labels` section words it (else key=value)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


@lru_cache(maxsize=None)
def _value_words(method: str) -> dict[str, dict[Any, str]]:
    from benchmark.config import load_yaml
    from benchmark.plugins import config_path

    path = config_path("methods", method)
    return (load_yaml(path).get("labels") or {}) if path.exists() else {}


def value_text(method: str, key: str, value: Any) -> str:
    """One hyperparameter's value as a table or legend shows it: the method's own words for it
    (its YAML `labels`: a value, or `other` with {} for the value), else key=value, numbers short."""
    words = _value_words(method).get(key) or {}
    if isinstance(value, (str, int, float, bool, type(None))) and value in words:
        return words[value]
    if "other" in words:
        return str(words["other"]).format(value)
    shown = "none" if value is None else ("on" if value is True else "off" if value is False else
                                          f"{value:g}" if isinstance(value, float) else value)
    return f"{key}={shown}"
