"""Random hyperparameter search: deterministic draws from each method's `search` section.

A method's YAML declares, per tunable hyperparameter (a dotted key of its resolved tree), one
distribution:

    search:
      optimizer.lr: {log_uniform: [1.0e-4, 1.0e-2]}   # a comment naming the source of the range
      gce_q: {uniform: [0.5, 0.9]}
      clusters: {choice: [8, 16, 32]}
      eval_every: {int_uniform: [100, 500]}

Draw 0 is always the defaults. Draw i > 0 samples every listed key, each from its own generator
seeded by a hash of (method, dataset, draw index, key) — DomainBed's `seed_hash` — so that adding
or removing one hyperparameter leaves every other key's values in every draw unchanged, and a
draw is the same on every machine. A dataset may narrow a space in its section (`datasets.<d>.search`
or `kinds.<k>.search`, merged over the top-level one).
"""
from __future__ import annotations

import hashlib
import math
import random
from typing import Any

from benchmark.errors import BenchError

DISTRIBUTIONS = ("log_uniform", "uniform", "int_uniform", "choice")


def seed_hash(*parts: Any) -> int:
    """A stable 31-bit seed from its parts (the same in every process and Python version)."""
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def _check_space(method: str, key: str, spec: Any) -> tuple[str, Any]:
    where = f"configs/methods/{method}.yaml search.{key}"
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise BenchError(f"{where}: write one distribution, {{name: [...]}} with name one of {', '.join(DISTRIBUTIONS)}")
    kind, arg = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise BenchError(f"{where}: choice takes a non-empty list of values")
        return kind, arg
    if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(v, (int, float)) for v in arg) and arg[0] < arg[1]):
        raise BenchError(f"{where}: {kind} takes [low, high] with low < high, got {arg!r}")
    if kind == "log_uniform" and arg[0] <= 0:
        raise BenchError(f"{where}: log_uniform needs low > 0, got {arg[0]}")
    return kind, arg


def sample(kind: str, arg: Any, rng: random.Random) -> Any:
    if kind == "log_uniform":
        return float(math.exp(rng.uniform(math.log(arg[0]), math.log(arg[1]))))
    if kind == "uniform":
        return float(rng.uniform(arg[0], arg[1]))
    if kind == "int_uniform":
        return int(rng.randint(int(arg[0]), int(arg[1])))
    return arg[rng.randrange(len(arg))]


def draw_values(method: str, dataset: str, space: dict[str, Any], draw: int) -> dict[str, Any]:
    """The dotted-key values of draw `draw` (empty for draw 0: the defaults)."""
    if draw == 0:
        return {}
    values = {}
    for key in sorted(space):
        kind, arg = _check_space(method, key, space[key])
        values[key] = sample(kind, arg, random.Random(seed_hash(method, dataset, draw, key)))
    return values


def search_space(method: str, cfg: dict[str, Any], section: dict[str, Any] | None) -> dict[str, Any]:
    """The method's space for one dataset: its top-level `search`, then the dataset's (or kind's) section's."""
    space = dict(cfg.get("search") or {})
    space.update((section or {}).get("search") or {})
    for key, spec in space.items():
        _check_space(method, key, spec)
    return space


def require_space(method: str, space: dict[str, Any]) -> None:
    if not space:
        raise BenchError(f"method {method} declares no search space: add a `search` section to configs/methods/{method}.yaml "
                         "(see benchmark/grid/search.py), or leave it out of --search")
