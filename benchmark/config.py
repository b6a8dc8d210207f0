"""Configuration: YAML files under configs/, merged with --config and --set overrides.

A method's hyperparameters for one dataset resolve in this order, later winning:
configs/defaults.yaml `method` -> configs/methods/<m>.yaml `defaults` -> its `kinds.<input kind>`
section when it has no section for the dataset, else its `datasets.<dataset>` section -> its
`by_conflict_pct.<pct>` entry -> its `budgets.<budget>` section -> under `--protocol matched`,
the dataset's backbone in the roles of the method's `matched` section (benchmark/protocol.py) ->
the --config file's `methods.<m>` -> --set key=value.
Dataset options resolve from configs/datasets/<d>.yaml `options`, then the --config file's
`datasets.<d>`, then --set <d>.key=value.
"""
from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import BenchError
from benchmark.plugins import config_path
from benchmark.validate import merge_checked

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"
BUDGETS = ("quick", "paper")


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; any problem is one clear error naming the file."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise BenchError(f"config file {path} does not exist") from None
    except OSError as e:
        raise BenchError(f"cannot read config file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise BenchError(f"config file {path} is not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BenchError(f"config file {path} must hold a mapping (key: value), got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def defaults() -> dict[str, Any]:
    return load_yaml(CONFIG_ROOT / "defaults.yaml")


def dataset_config(name: str) -> dict[str, Any]:
    """configs/datasets/<name>.yaml: standard conflict_pcts, input kind, default options."""
    path = config_path("datasets", name)
    if not path.exists():
        raise BenchError(f"dataset {name!r} has no config: add configs/datasets/{name}.yaml")
    cfg = load_yaml(path)
    cfg.setdefault("options", {})
    return cfg


def supported_datasets(method: str, datasets: list[str]) -> list[str]:
    """Those of `datasets` the method declares settings for: a `datasets.<dataset>` section in its
    YAML, or a `kinds.<input kind>` section for datasets of that kind without their own. A method
    declares only the datasets it was run on; nothing else runs it. Reads the YAML once."""
    cfg = load_yaml(config_path("methods", method))
    named, kinds = cfg.get("datasets") or {}, cfg.get("kinds") or {}
    return [d for d in datasets if d in named or dataset_config(d).get("input_kind", "small") in kinds]


def supports(method: str, dataset: str) -> bool:
    return bool(supported_datasets(method, [dataset]))


def support_text(method: str) -> str:
    """What the method declares, in words: its datasets and input kinds."""
    cfg = load_yaml(config_path("methods", method))
    named = ", ".join(sorted(cfg.get("datasets") or {})) or "no dataset by name"
    kinds = ", ".join(sorted(cfg.get("kinds") or {}))
    return f"it declares settings for {named}" + (f" and for any dataset of input kind {kinds}" if kinds else "")


def method_hparams(method: str, dataset: str, budget: str, user: dict[str, Any] | None = None,
                   conflict_pct: float | None = None, protocol: Any = None) -> dict[str, Any]:
    """Resolved hyperparameters of `method` on `dataset` at `budget` (see module docstring).

    A dataset section may hold `by_conflict_pct: {0.5: {...}, 1: {...}}` for numbers the official
    scripts set per ratio; the entry for `conflict_pct` is merged after the dataset section. A
    ratio the scripts do not list takes the nearest listed ratio's entry (the smaller on a tie),
    so every ratio runs; the job's stored hyperparameters show what it used.
    """
    if budget not in BUDGETS:
        raise BenchError(f"unknown budget {budget!r}: use one of {', '.join(BUDGETS)}")
    cfg = load_yaml(config_path("methods", method))
    hp = deep_merge(defaults().get("method", {}), cfg.get("defaults", {}))
    sections = cfg.get("datasets") or {}
    if dataset in sections:
        hp = deep_merge(hp, sections[dataset])
    else:
        kind = dataset_config(dataset).get("input_kind", "small")
        kinds = cfg.get("kinds") or {}
        if kind not in kinds:
            raise BenchError(f"method {method} does not support dataset {dataset}: {support_text(method)}; to add it, give "
                             f"configs/methods/{method}.yaml a datasets.{dataset} (or kinds.{kind}) section with the official settings")
        hp = deep_merge(hp, kinds[kind])
    hp.pop("search", None)  # a dataset's narrowing of the search space is no hyperparameter
    per_ratio = {float(k): v for k, v in (hp.pop("by_conflict_pct", None) or {}).items()}
    if conflict_pct is not None and per_ratio:
        nearest = min(per_ratio, key=lambda listed: (abs(listed - float(conflict_pct)), listed))
        hp = deep_merge(hp, per_ratio[nearest])
    if budget != "paper" and budget not in (cfg.get("budgets") or {}):
        raise BenchError(f"method {method} has no budgets.{budget} section: add one to {config_path('methods', method)} "
                         "(the steps of a smoke run), or run it at --budget paper")
    hp = deep_merge(hp, (cfg.get("budgets") or {}).get(budget, {}))
    if protocol is not None:  # a benchmark.protocol.Protocol
        hp = protocol.apply_to(method, dataset, hp)
    override = ((user or {}).get("methods") or {}).get(method)
    return hp if override is None else merge_checked(hp, override, f"--config methods.{method}: {method}")


def method_search_space(method: str, dataset: str) -> dict[str, Any]:
    """The method's `search` space on `dataset` (benchmark/grid/search.py): the top-level one, narrowed by
    the dataset's (or its input kind's) section."""
    from benchmark.grid.search import search_space

    cfg = load_yaml(config_path("methods", method))
    sections = cfg.get("datasets") or {}
    section = sections.get(dataset)
    if section is None:
        section = (cfg.get("kinds") or {}).get(dataset_config(dataset).get("input_kind", "small"))
    return search_space(method, cfg, section)


def parse_value(text: str) -> Any:
    """A --set value as YAML scalar: numbers, booleans, lists in [..] stay typed. `1e-8` is a number
    too (YAML 1.1 reads exponents without a dot as strings)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_sets(items: list[str]) -> list[tuple[str, list[Any]]]:
    """`key=v1,v2` -> (key, [v1, v2]); a comma-separated list expands the grid."""
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise BenchError(f"malformed --set {item!r}: write key=value, e.g. --set optimizer.lr=0.001 or --set cmnist.valid_fraction=0.1")
        if raw.strip().startswith("["):
            values = [parse_value(raw)]
        else:
            values = [parse_value(v.strip()) for v in raw.split(",")]
        out.append((key, values))
    return out


def has_path(tree: dict[str, Any], dotted: str) -> bool:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def set_combinations(sets: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """Every combination of the --set values: one dict key -> value per grid point."""
    if not sets:
        return [{}]
    keys = [k for k, _ in sets]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in sets))]
