"""Method registry: `@register_method(name)` fills it when `methods` is imported."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from benchmark.errors import BenchError
from benchmark.plugins import register_config
from datasets.base import DataInfo
from methods.base import SUPERVISION, Method

METHODS: dict[str, type[Method]] = {}


def register_method(name: str, config: str | Path | None = None) -> Callable[[type[Method]], type[Method]]:
    """Class decorator; checks at import time that the name is new and its YAML config exists:
    configs/methods/<name>.yaml for a built-in method, `config` or <name>.yaml beside the module
    for one from another package (benchmark/plugins.py)."""

    def wrap(cls: type[Method]) -> type[Method]:
        if name in METHODS:
            raise RuntimeError(f"method {name!r} is registered twice ({METHODS[name].__module__} and {cls.__module__})")
        if not (cls.__doc__ or "").strip():
            raise RuntimeError(f"method {name!r} needs a docstring naming its paper")
        if cls.supervision not in SUPERVISION:
            raise RuntimeError(f"method {name!r} declares supervision {cls.supervision!r}: use one of {', '.join(SUPERVISION)}")
        register_config("methods", name, cls, config)
        cls.name = name
        METHODS[name] = cls
        return cls

    return wrap


def build(name: str, info: DataInfo, hparams: dict[str, Any], device: str | torch.device = "cpu") -> Method:
    """Instantiate registered method `name` for a dataset with resolved hyperparameters."""
    if name not in METHODS:
        raise BenchError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
    return METHODS[name](info, hparams, torch.device(device))
