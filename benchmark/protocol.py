"""Comparison protocols: what a row of a table compares.

- `published` (the default): each method with its paper's networks and settings. It reproduces
  papers, but two methods on different networks compare networks as much as methods.
- `matched`: every method of the grid predicts with the same named backbone of the dataset
  (`backbones` in configs/datasets/<d>.yaml, chosen with `--backbone`); its auxiliary networks
  follow the rule in the `matched` section of its YAML (which hyperparameter holds which role of
  the backbone). Everything else, step budgets included, stays as published: the budget rule is
  "each method's own published schedule", and every result records its optimiser steps and
  forward passes so that a table can show the compute beside the accuracy.

A matched job's hyperparameters carry `{"protocol": {"name": "matched", "backbone": B}}`, so the
protocol is part of its id; a published job carries nothing, so stored ids stay valid.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmark.config import dataset_config, load_yaml
from benchmark.errors import BenchError
from benchmark.plugins import config_path

PROTOCOLS = ("published", "matched")
PUBLISHED = "published"
BUDGET_RULE = "each method keeps its published step schedule; the steps column shows the training compute"
ROLES = ("network", "shallow")


@dataclass(frozen=True)
class Protocol:
    """One protocol choice for one dataset: `published`, or `matched` with a backbone name."""

    name: str = PUBLISHED
    backbone: str | None = None

    @property
    def key(self) -> dict[str, str] | None:
        """What a job's hyperparameters store (None for published: ids as before protocols existed)."""
        return None if self.name == PUBLISHED else {"name": self.name, "backbone": str(self.backbone)}

    @property
    def label(self) -> str:
        return self.name if self.name == PUBLISHED else f"{self.name} ({self.backbone})"

    def apply_to(self, method: str, dataset: str, hp: dict[str, Any]) -> dict[str, Any]:
        """`hp` with the method's networks replaced as this protocol says (see `apply`)."""
        return apply(method, dataset, hp, self)


def predictor_spec(job: dict[str, Any]) -> dict[str, Any]:
    """The model spec a stored job predicts with (`target` where a method trains several networks,
    else `model`); {} when it names none."""
    hp = (job.get("hparams") or {}).get("method", {})
    spec = hp.get("target") or hp.get("model") or {}
    return spec if isinstance(spec, dict) and "name" in spec else {}


def network_text(job: dict[str, Any]) -> str:
    """The network a stored job predicts with, as a table names it: its name and widths
    (`mlp 100-100-100`, `cnn 64-128-256`, `resnet50 (ImageNet)`); "" when the job names none."""
    spec = predictor_spec(job)
    if not spec:
        return ""
    widths = spec.get("hidden") or spec.get("channels") or [layer[0] for layer in spec.get("layers") or []]
    text = str(spec["name"]) + (" " + "-".join(str(w) for w in widths) if widths else "")
    return text + (" (ImageNet)" if spec.get("pretrained") else "")


def backbones(dataset: str) -> dict[str, dict[str, Any]]:
    """The dataset's named matched backbones: {name: {network: spec, shallow: spec, ...}}, first = default."""
    found = dataset_config(dataset).get("backbones") or {}
    for name, entry in found.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("network"), dict):
            raise BenchError(f"configs/datasets/{dataset}.yaml backbones.{name} must hold `network: {{name: ..., ...}}`")
    return found


def resolve(protocol: str, backbone: str | None, dataset: str) -> Protocol:
    """The protocol of the grid on one dataset; an unknown name or a backbone the dataset lacks is one error."""
    if protocol not in PROTOCOLS:
        raise BenchError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if protocol == PUBLISHED:
        if backbone is not None:
            raise BenchError("--backbone chooses the network of --protocol matched: add --protocol matched, or drop --backbone")
        return Protocol()
    names = list(backbones(dataset))
    if not names:
        raise BenchError(f"dataset {dataset} declares no matched backbone: add a `backbones` section to "
                         f"configs/datasets/{dataset}.yaml, or run it with --protocol published")
    if backbone is None:
        return Protocol(protocol, names[0])
    if backbone not in names:
        raise BenchError(f"dataset {dataset} has no matched backbone {backbone!r}: its backbones are {', '.join(names)}")
    return Protocol(protocol, backbone)


def network_roles(method: str) -> dict[str, str]:
    """The method's `matched` section: {hyperparameter key: backbone role}."""
    roles = load_yaml(config_path("methods", method)).get("matched") or {}
    if not roles:
        raise BenchError(f"method {method} declares no rule for --protocol matched: add a `matched` section "
                         f"(hyperparameter: network | shallow) to configs/methods/{method}.yaml")
    bad = {k: v for k, v in roles.items() if v not in ROLES}
    if bad:
        key, role = next(iter(bad.items()))
        raise BenchError(f"configs/methods/{method}.yaml matched.{key}: unknown role {role!r}; roles: {', '.join(ROLES)}")
    return dict(roles)


def apply(method: str, dataset: str, hp: dict[str, Any], protocol: Protocol) -> dict[str, Any]:
    """`hp` with the method's networks replaced by the backbone's, for a matched protocol."""
    if protocol.key is None:
        return hp
    entry = backbones(dataset)[str(protocol.backbone)]
    out = dict(hp)
    for key, role in network_roles(method).items():
        if key not in hp:
            raise BenchError(f"configs/methods/{method}.yaml matched.{key}: {method} has no hyperparameter {key!r} on {dataset}")
        if role not in entry:
            raise BenchError(f"configs/datasets/{dataset}.yaml backbones.{protocol.backbone} has no {role!r} network, "
                             f"which {method} needs for {key!r}")
        out[key] = dict(entry[role])
    return out


def of_job(job: dict[str, Any]) -> Protocol:
    """The protocol a stored job ran under (older results: published)."""
    key = (job.get("hparams") or {}).get("protocol") or {}
    return Protocol(key["name"], key.get("backbone")) if key else Protocol()


def caption(protocols: list[Protocol]) -> str:
    """The protocol part of a caption."""
    if not protocols or all(p.name == PUBLISHED for p in protocols):
        return "protocol: published (each method with its paper's networks and settings)"
    backbone = ", ".join(sorted({str(p.backbone) for p in protocols}))
    return f"protocol: matched, backbone {backbone} (every method predicts with it; {BUDGET_RULE})"
