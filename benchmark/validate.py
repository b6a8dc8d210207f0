"""One check of every value a run is given, before anything trains.

A method's hyperparameters are declared by its YAML file: a key exists when the resolved tree for
the dataset has it, and its type is that of its default there (a number stays a number, a flag a
flag, a list a list). A dataset's options are declared by its loader's signature (name, type
annotation) and its YAML `options`. On top of the types, `RULES` below says which values are whole
numbers and which ranges are allowed, by key name, for every method and dataset alike; every float
must be finite. Whatever breaks a rule is one `BenchError` that names the key, what it holds and
what is allowed (with a "did you mean" for a near-miss key), so the CLI prints one line and exits
2 before any job starts.
"""
from __future__ import annotations

import copy
import difflib
import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

from benchmark.errors import BenchError

SEED_MAX = 2**63 - 1  # torch's generators take 64-bit seeds; JSON and every backend keep int64 exactly


@dataclass(frozen=True)
class Rule:
    """What a key's value may be: a whole number or any number, bounds, or one of some words."""

    integer: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False
    none: bool = False  # null allowed (an option that is off)
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        kind = "a whole number" if self.integer else "a finite number"
        low, high = _show(self.low), _show(self.high)
        if self.low is not None and self.high is not None:
            span = f" in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        elif self.low is not None:
            span = f" {'>' if self.low_open else '>='} {low}"
        elif self.high is not None:
            span = f" {'<' if self.high_open else '<='} {high}"
        else:
            span = ""
        return kind + span + (" or null" if self.none else "")


def _show(bound: float | None) -> str:
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _count(low: int) -> Rule:
    return Rule(integer=True, low=low)


POSITIVE = Rule(low=0, low_open=True)
NON_NEGATIVE = Rule(low=0)
UNIT = Rule(low=0, high=1)
UNIT_OPEN = Rule(low=0, high=1, high_open=True)

# Method hyperparameters by leaf key name (list values: each element).
RULES: dict[str, Rule] = {
    "steps": _count(1), "epochs": _count(1), "batch_size": _count(1), "clusters": _count(1),
    "kmeans_max_iter": _count(1), "lr_decay_step": _count(1), "hidden": _count(1), "channels": _count(1),
    "eval_every": _count(0), "swap_start": _count(0), "cluster_at_step": Rule(integer=True, low=0, none=True),
    "lr": POSITIVE, "temperature": POSITIVE, "input_divisor": POSITIVE, "lr_gamma": POSITIVE,
    "prune_upweight": POSITIVE, "lambda_upweight": POSITIVE, "gce_q": Rule(low=0, high=1, low_open=True),
    "weight_decay": NON_NEGATIVE, "lambda_sparse": NON_NEGATIVE, "lambda_con_prune": NON_NEGATIVE,
    "lambda_con_retrain": NON_NEGATIVE, "lambda_dis": NON_NEGATIVE, "lambda_swap": NON_NEGATIVE,
    "lambda_swap_b": NON_NEGATIVE, "dist_weight": NON_NEGATIVE, "poe_weight": NON_NEGATIVE, "kmeans_tol": NON_NEGATIVE,
    "ema_alpha": UNIT, "eta": UNIT, "tau": UNIT, "momentum": UNIT_OPEN, "betas": UNIT_OPEN,
    "amp": Rule(choices=("off", "bf16", "fp16")),
}
# Keys a mapping of this name may hold even where its default leaves them out (an SGD
# optimiser's momentum where the method's default is Adam).
OPEN_KEYS: dict[str, tuple[str, ...]] = {"optimizer": ("name", "lr", "weight_decay", "betas", "momentum")}
OPTIMIZERS = ("adam", "sgd")

# Dataset options by name (the loader's annotation gives the type).
OPTION_RULES: dict[str, Rule] = {
    "seed": Rule(integer=True, low=0, high=2**32 - 1),  # seeds NumPy's generators, which take 32 bits
    "severity": Rule(integer=True, low=1, high=5),
    "valid_fraction": Rule(low=0, high=1, high_open=True),
    "train_size": _count(1), "eval_size": _count(1), "positions": _count(1), "side": _count(1), "input_size": _count(1),
    "background": UNIT,
}


def did_you_mean(word: str, known: typing.Iterable[str]) -> str:
    """' (did you mean X?)' when `word` is close to one of `known`, else ''."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a word"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def check_number(where: str, value: Any, rule: Rule | None) -> Any:
    """`value` checked against `rule` (finite; whole where it must be; in range); an integral float
    given for a whole-number key comes back as an int."""
    if isinstance(value, list):
        return [check_number(f"{where}[{i}]", v, rule) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise BenchError(f"{where} = {value}: must be {rule.describe() if rule else 'a finite number'}")
    if rule is None:
        return value
    if value is None:
        if rule.none:
            return None
        raise BenchError(f"{where} is null: must be {rule.describe()}")
    if rule.choices:
        if value is False and "off" in rule.choices:  # YAML reads a bare `off` as false
            value = "off"
        if value not in rule.choices:
            raise BenchError(f"{where} = {value!r}: must be {rule.describe()}{did_you_mean(str(value), rule.choices)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchError(f"{where} = {value!r} is {_kind(value)}: must be {rule.describe()}")
    if rule.integer:
        if isinstance(value, float) and not value.is_integer():
            raise BenchError(f"{where} = {value:g}: must be {rule.describe()}")
        value = int(value)
    if ((rule.low is not None and (value < rule.low or (rule.low_open and value == rule.low)))
            or (rule.high is not None and (value > rule.high or (rule.high_open and value == rule.high)))):
        raise BenchError(f"{where} = {value:g}: must be {rule.describe()}")
    return value


def check_tree(tree: dict[str, Any], where: str, rules: dict[str, Rule] = RULES) -> dict[str, Any]:
    """Every leaf of a resolved hyperparameter tree checked by its name's rule (a copy, normalised)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        at = f"{where}.{key}"
        if isinstance(value, dict):
            if key == "optimizer":  # a setting set to null is left out (to switch Adam to SGD and back)
                value = {k: v for k, v in value.items() if v is not None}
            out[key] = check_tree(value, at, rules)
            if key == "optimizer":
                _check_optimizer(value, at)
        elif isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value):
            out[key] = value  # structured lists (DeNetDM's layer specs) are checked by their method
        else:
            out[key] = check_number(at, value, rules.get(key))
    return out


def _check_optimizer(spec: dict[str, Any], where: str) -> None:
    """The optimiser's name is one we build, and it takes every setting given (Adam has no momentum)."""
    name = str(spec.get("name", "adam")).lower()
    if name not in OPTIMIZERS:
        raise BenchError(f"{where}.name = {spec['name']!r}: must be one of {', '.join(OPTIMIZERS)}")
    foreign = {"adam": "momentum", "sgd": "betas"}[name]
    if foreign in spec:
        raise BenchError(f"{where}.{foreign}: {name} takes no {foreign}; set it to null (--set ...{foreign}=null) "
                         f"or {where}.name to {'sgd' if name == 'adam' else 'adam'}")
    if "betas" in spec and len(spec["betas"]) != 2:
        raise BenchError(f"{where}.betas = {spec['betas']!r}: must be two numbers in [0, 1)")


def leaves(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """Every leaf key of a tree as a dotted path (`optimizer.lr`)."""
    out = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        out += leaves(value, path + ".") if isinstance(value, dict) else [path]
    return out


def check_type(where: str, default: Any, value: Any) -> Any:
    """`value` where the declaration holds `default`: the same kind of value (numbers of either
    kind for a number; anything for a null default). A whole number given for a fractional
    default becomes a float, so `lr=1` and `lr=1.0` are one job."""
    if default is None or value is None:
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
        if isinstance(default, str) and value is False:
            return value  # `off` read by YAML as false: the rule of the key decides
    elif isinstance(default, (int, float)) and isinstance(value, (int, float)):
        return float(value) if isinstance(default, float) and isinstance(value, int) else value
    elif isinstance(default, str) and isinstance(value, str):
        return value
    elif isinstance(default, list) and isinstance(value, list):
        return value
    raise BenchError(f"{where} = {value!r} is {_kind(value)}: it must be {_kind(default)} (its default is {default!r})")


def declares(tree: dict[str, Any], dotted: str) -> bool:
    """Whether a resolved hyperparameter tree has the key `dotted` (or may have it: `OPEN_KEYS`)."""
    parts = dotted.split(".")
    node: Any = tree
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    parent = parts[-2] if len(parts) > 1 else ""
    return isinstance(node, dict) and (parts[-1] in node or parts[-1] in OPEN_KEYS.get(parent, ()))


def set_checked(tree: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    """Set `tree[dotted]` after checking that the key is declared and the value of its kind."""
    if not declares(tree, dotted):
        raise BenchError(f"{where} has no hyperparameter {dotted!r}{did_you_mean(dotted, leaves(tree))}")
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node[part]
    node[leaf] = check_type(f"{where} {dotted}", node.get(leaf), value)


def merge_checked(base: dict[str, Any], override: Any, where: str) -> dict[str, Any]:
    """A copy of `base` with every leaf of `override` set through `set_checked`."""
    out = copy.deepcopy(base)
    if not isinstance(override, dict):
        raise BenchError(f"{where}: must be a mapping of hyperparameters, got {_kind(override)}")
    for path, value in _flat(override, ""):
        set_checked(out, path, value, where)
    return out


def _flat(tree: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        out += _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else [(f"{prefix}{key}", value)]
    return out


def option_types(loader: Callable[..., Any]) -> dict[str, Any]:
    """A loader's options (its parameters after root and conflict_pct) and their annotated types."""
    hints = typing.get_type_hints(loader)
    params = list(inspect.signature(loader).parameters)
    return {name: hints.get(name, Any) for name in params if name not in ("root", "conflict_pct")}


def _allowed(annotation: Any) -> tuple[type, ...]:
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union else (annotation,)
    return tuple(a for a in args if isinstance(a, type))


def check_option(dataset: str, name: str, value: Any, annotation: Any) -> Any:
    """One dataset option against its loader's annotation and `OPTION_RULES`."""
    where = f"{dataset}.{name}"
    allowed = _allowed(annotation)
    if allowed:
        ok = value is None and type(None) in allowed
        ok = ok or (isinstance(value, bool) and bool in allowed)
        ok = ok or (not isinstance(value, bool) and isinstance(value, int) and (int in allowed or float in allowed))
        ok = ok or (isinstance(value, float) and (float in allowed or (int in allowed and value.is_integer())))
        ok = ok or (isinstance(value, str) and str in allowed)
        if not ok:
            names = " or ".join({"NoneType": "null", "int": "a whole number", "float": "a number", "bool": "true/false",
                                 "str": "a word"}.get(a.__name__, a.__name__) for a in allowed)
            raise BenchError(f"{where} = {value!r} is {_kind(value)}: it must be {names}")
        if isinstance(value, int) and not isinstance(value, bool) and float in allowed and int not in allowed:
            value = float(value)
    return check_number(where, value, OPTION_RULES.get(name))


def check_options(dataset: str, options: dict[str, Any], declared: dict[str, Any], where: str) -> dict[str, Any]:
    """A dataset's options (only those `declared`, by `option_types`; each checked), normalised."""
    out = {}
    for name, value in options.items():
        if name not in declared:
            raise BenchError(f"{where}: dataset {dataset} has no option {name!r}{did_you_mean(name, declared)}; "
                             f"its options: {', '.join(sorted(declared)) or 'none'}")
        out[name] = check_option(dataset, name, value, declared[name])
    return out


def check_config_file(user: dict[str, Any], path: str, methods: typing.Iterable[str], datasets: typing.Iterable[str]) -> None:
    """A --config file's shape: only `methods` and `datasets`, each a mapping of registered names
    to mappings (their keys are checked when the grid resolves them)."""
    sections = {"methods": sorted(methods), "datasets": sorted(datasets)}
    for key, value in user.items():
        if key not in sections:
            raise BenchError(f"--config {path}: unknown top-level key {key!r}{did_you_mean(str(key), sections)}; "
                             "a config holds `methods:` and `datasets:`")
        if value is None:
            continue
        if not isinstance(value, dict):
            raise BenchError(f"--config {path}: `{key}` must map names to settings, got {_kind(value)}")
        kind = key[:-1]
        for name, settings in value.items():
            if name not in sections[key]:
                raise BenchError(f"--config {path}: {key}.{name}: no such {kind}{did_you_mean(str(name), sections[key])}; "
                                 f"registered: {', '.join(sections[key])}")
            if settings is not None and not isinstance(settings, dict):
                raise BenchError(f"--config {path}: {key}.{name} must be a mapping of settings, got {_kind(settings)}")


def check_count(flag: str, value: int | None, low: int = 1) -> None:
    """A CLI count (`--jobs`, `--log-every`, ...) that must be a whole number >= low."""
    if value is not None and value < low:
        raise BenchError(f"{flag} must be {low} or more, got {value}")


def check_seeds(seeds: typing.Iterable[int], flag: str = "--seeds") -> None:
    """Job seeds: whole numbers that every generator and the JSON store keep exactly."""
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
            raise BenchError(f"{flag}: seed {seed} is out of range: seeds are whole numbers from 0 to 2**63 - 1")
