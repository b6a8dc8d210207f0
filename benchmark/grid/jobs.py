"""Jobs: one (method, dataset, conflict_pct, seed, budget, hparams) each, with a stable id.

The id hashes everything that changes the result (the five fields, the resolved method
hyperparameters and dataset options, the result-format version) and nothing that does not
(device, paths, backend, logging and checkpoint intervals).
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from benchmark import RESULT_FORMAT_VERSION
from benchmark.config import dataset_config, method_hparams, method_search_space, set_combinations, supports
from benchmark.errors import BenchError
from benchmark.imports import project_packages
from benchmark.plugins import config_path
from benchmark.protocol import Protocol, of_job
from benchmark.protocol import resolve as resolve_protocol
from benchmark.grid.search import draw_values, require_space
from benchmark.supervision import declared as supervision_of
from benchmark.supervision import no_validation_split
from benchmark.validate import check_options, check_tree, check_seeds, declares, did_you_mean, leaves, option_types, set_checked


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


# Harness options (configs/defaults.yaml `method:`) added after results were stored, at the values
# that reproduce them.
HARNESS_NEUTRAL_DEFAULTS: dict[str, Any] = {"channels_last": False}


def neutral_defaults(method: str) -> dict[str, Any]:
    """The method's and the harness's options added after results were stored, at the values that reproduce them."""
    import methods  # noqa: F401  (fills the registry)
    from methods.registry import METHODS

    return {**HARNESS_NEUTRAL_DEFAULTS, **getattr(METHODS.get(method), "neutral_defaults", {})}


def complete_hparams(method: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """A stored job's hyperparameters with any option it predates set to its neutral default, so that
    reports compare it with newer jobs of the same setting."""
    return {**hparams, "method": {**neutral_defaults(method), **hparams.get("method", {})}}


def file_stem(text: str) -> str:
    """`text` as one file name: every character other than letters, digits, '.', '_', '-' becomes
    '_', and it cannot start with a dot, so a string read from a stored result never names a path."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip(".") or "_"


def stored_name(job: dict[str, Any]) -> str:
    """A job's file-name stem in the store (jobs/, failed/, logs/, ...) from its description
    (`Job.describe()`, the "job" entry of a stored record): method_dataset_c<pct>_s<seed>_<id>."""
    return file_stem(f"{job['method']}_{job['dataset']}_c{float(job['conflict_pct']):g}_s{job['seed']}_{job['id']}")


@dataclass(frozen=True)
class Job:
    method: str
    dataset: str
    conflict_pct: float
    seed: int
    budget: str
    hparams_json: str = field(repr=False)
    draw: int | None = field(default=None, compare=False)  # its --search draw (0 = defaults); not part of the id

    @property
    def hparams(self) -> dict[str, Any]:
        """{"method": resolved method hyperparameters, "dataset": dataset options}."""
        return json.loads(self.hparams_json)

    def _digest(self, hparams: dict[str, Any], **more: Any) -> str:
        key = {
            "format": RESULT_FORMAT_VERSION, "method": self.method, "dataset": self.dataset,
            "conflict_pct": self.conflict_pct, "seed": self.seed, "budget": self.budget, "hparams": hparams, **more,
        }
        return hashlib.sha256(canonical(key).encode()).hexdigest()[:12]

    def _hashed_hparams(self) -> dict[str, Any]:
        """The hyperparameters the id hashes: all, except an option added after results were stored
        while it holds the value that reproduces them (`Method.neutral_defaults`), so that adding
        an option does not orphan the results it cannot have changed."""
        hp = self.hparams
        neutral = neutral_defaults(self.method)
        hp["method"] = {k: v for k, v in hp["method"].items() if not (k in neutral and v == neutral[k])}
        return hp

    @property
    def id(self) -> str:
        return self._digest(self._hashed_hparams())

    def prefix_id(self, ignored: tuple[str, ...], extra: Any = None) -> str:
        """The id of this job with the method hyperparameters in `ignored` left out: jobs that share it
        run identically up to a stage those hyperparameters do not reach."""
        hp = self._hashed_hparams()
        hp["method"] = {k: v for k, v in hp["method"].items() if k not in ignored}
        return self._digest(hp, extra=extra)

    @property
    def protocol(self) -> Protocol:
        return of_job({"hparams": self.hparams})

    @property
    def name(self) -> str:
        """File-name stem: readable fields, then the id."""
        return stored_name({"method": self.method, "dataset": self.dataset, "conflict_pct": self.conflict_pct,
                            "seed": self.seed, "id": self.id})

    @property
    def label(self) -> str:
        ratio = "as released" if self.conflict_pct == 0 else f"{self.conflict_pct:g}% conflicting"
        protocol = "" if self.protocol.key is None else f", {self.protocol.label}"
        return f"{self.method} on {self.dataset} ({ratio}, seed {self.seed}{protocol})"

    def describe(self) -> dict[str, Any]:
        out = {"id": self.id, "method": self.method, "dataset": self.dataset, "conflict_pct": self.conflict_pct,
               "seed": self.seed, "budget": self.budget, "hparams": self.hparams}
        return out if self.draw is None else {**out, "draw": self.draw}


def _apply_sets(method: str, dataset: str, hp: dict[str, Any], options: dict[str, Any],
                point: dict[str, Any], used: set[str], option_types: dict[str, Any]) -> None:
    """Apply one grid point's --set values that concern this (method, dataset), each checked."""
    for key, value in point.items():
        head, _, rest = key.partition(".")
        if rest and method_config_exists(head):
            if head == method:
                set_checked(hp, rest, value, f"--set {key}: method {method}")
                used.add(key)
        elif rest and dataset_config_exists(head):
            if head == dataset:
                options.update(check_options(dataset, {rest: value}, option_types, f"--set {key}"))
                used.add(key)
        elif declares(hp, key):
            set_checked(hp, key, value, "--set")
            used.add(key)


def method_config_exists(name: str) -> bool:
    return config_path("methods", name).exists()


def dataset_config_exists(name: str) -> bool:
    return config_path("datasets", name).exists()


def check_conflict_pct(dataset: str, pct: float, dcfg: dict[str, Any]) -> None:
    allowed = [float(a) for a in dcfg.get("allowed_conflict_pcts") or []]
    if allowed and float(pct) not in allowed:
        raise BenchError(f"{dataset} exists only at conflict_pct {' '.join(f'{a:g}' for a in allowed)}, got {pct:g}")
    if pct == 0 and allowed == [0.0]:
        return  # a fixed release whose conflicting fraction is what it is (ISIC): 0 stands for "as released"
    if not 0 < pct < 100:
        raise BenchError(f"conflict_pct must be a percentage in (0, 100), got {pct:g} (the papers use 0.5 1 2 5)")


def _check_validation_split(method: str, dataset: str, options: dict[str, Any]) -> None:
    """A method that uses the validation split's groups, on a dataset whose validation split is
    held out on request and is not: one error before anything runs."""
    if options.get("valid_fraction") == 0 and supervision_of(method) == "valid-groups":
        raise BenchError(no_validation_split(method, dataset))


def expand_grid(methods: list[str], datasets: list[str], seeds: list[int], conflict_pcts: list[float] | None,
                budget: str, sets: list[tuple[str, list[Any]]] | None = None,
                user: dict[str, Any] | None = None, pcts_by_dataset: dict[str, list[float]] | None = None,
                only_supported: bool = False, protocol: str = "published", backbone: str | None = None,
                notes: list[str] | None = None, search: int = 0) -> list[Job]:
    """The product of the CLI lists (and of every comma-separated --set value), as Jobs.

    `protocol`/`backbone`: the comparison protocol (benchmark/protocol.py); a matched job's
    hyperparameters name it, so it is part of the job's id. `search` > 0 adds that many random
    draws of each method's search space (benchmark/grid/search.py) beside its defaults (draw 0).

    `pcts_by_dataset` gives some datasets their own conflict ratios (a paper table's columns).
    `only_supported` leaves out the (method, dataset) pairs the method declares no setting for
    (`--methods all`), and a validation-split method where the dataset holds none out, each with a
    line in `notes`; otherwise such a pair is an error.
    """
    jobs: list[Job] = []
    check_seeds(seeds)
    used: set[str] = set()
    known: set[str] = set()  # every key the grid's methods and datasets declare (for "did you mean")
    points = set_combinations(sets or [])
    for dataset in datasets:
        dcfg = dataset_config(dataset)
        pcts = (pcts_by_dataset or {}).get(dataset) or conflict_pcts or dcfg.get("conflict_pcts", [])
        if not pcts:
            raise BenchError(f"dataset {dataset} declares no standard conflict_pcts: pass --conflict-pcts")
        for pct in pcts:
            check_conflict_pct(dataset, float(pct), dcfg)
        types = option_types(project_packages()[0].DATASETS[dataset].loader)
        base_options = check_options(dataset, dcfg["options"], types, f"configs/datasets/{dataset}.yaml")
        base_options.update(check_options(dataset, ((user or {}).get("datasets") or {}).get(dataset) or {}, types,
                                          f"--config datasets.{dataset}"))
        known.update(f"{dataset}.{option}" for option in types)
        used.update(k for k, _ in (sets or []) if k.partition(".")[0] == dataset and k.partition(".")[2] in types)
        chosen = resolve_protocol(protocol, backbone, dataset)
        for method in methods:
            if only_supported and not supports(method, dataset):
                continue
            per_pct = {float(pct): method_hparams(method, dataset, budget, user, float(pct), chosen) for pct in pcts}
            known.update(key for hp in per_pct.values() for key in leaves(hp))
            space = method_search_space(method, dataset) if search else {}
            if search:
                require_space(method, space)
            for point, pct, draw in itertools.product(points, pcts, range(search + 1) if search else [None]):
                hp = copy.deepcopy(per_pct[float(pct)])
                for key, value in draw_values(method, dataset, space, draw or 0).items():
                    if not declares(hp, key):
                        raise BenchError(f"configs/methods/{method}.yaml search.{key}: {method} has no hyperparameter {key!r} on {dataset}")
                    set_checked(hp, key, value, f"search draw {draw} of {method} on {dataset}")
                options = dict(base_options)
                _apply_sets(method, dataset, hp, options, point, used, types)
                hp = check_tree(hp, method)
                try:
                    _check_validation_split(method, dataset, options)
                except BenchError as e:
                    if not only_supported:
                        raise
                    if notes is not None:
                        notes.append(f"leaves out {method} on {dataset}: {e}")
                    continue
                for seed in seeds:
                    payload = canonical({"method": hp, "dataset": options,
                                         **({"protocol": chosen.key} if chosen.key else {})})
                    jobs.append(Job(method, dataset, float(pct), int(seed), budget, payload, draw))
    unused = [k for k, _ in (sets or []) if k not in used]
    if unused:
        raise BenchError(
            f"--set {unused[0]}: no selected method has a hyperparameter {unused[0]!r} and it names no dataset option"
            f"{did_you_mean(unused[0], known)}; see configs/methods/*.yaml for method keys (<method>.<key> sets one method's), or write <dataset>.<option>"
        )
    unique: dict[str, Job] = {}
    for job in jobs:
        unique.setdefault(job.id, job)
    return list(unique.values())


_DEFAULT_JOBS: dict[tuple, Any] = {}


def default_job(job: dict[str, Any]) -> Any:
    """The Job the current configs define for a stored run's (method, dataset, ratio, seed, budget,
    protocol), or None when they no longer cover it."""
    protocol = of_job(job)
    key = (job["method"], job["dataset"], float(job["conflict_pct"]), int(job["seed"]), job["budget"], protocol)
    if key not in _DEFAULT_JOBS:
        try:
            _DEFAULT_JOBS[key] = expand_grid([key[0]], [key[1]], [key[3]], [key[2]], key[4], protocol=protocol.name,
                                             backbone=protocol.backbone)[0]
        except BenchError:
            _DEFAULT_JOBS[key] = None
    return _DEFAULT_JOBS[key]


def is_default_run(job: dict[str, Any]) -> bool:
    """Whether a stored job is the run the current configs define for its cell (no option set)."""
    return getattr(default_job(job), "id", None) == job.get("id")
