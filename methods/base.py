"""The method contract: models, optimisers, ordered stages, `predict`.

A method says only what makes it different from ERM. The harness owns the loop, devices,
AMP, sampling, logging, checkpoints and evaluation. What a method sees of the training data is
`Batch(x, y, index)` in loss stages and a `TrainSet` (x, y, index) in once-per-stage functions:
neither type has a bias field, and the harness builds both from the images and targets alone.

A method's `supervision` says which group labels ((y, bias) pairs) it may see: `none` (the
default: none at all), `valid-groups` (those of the validation split only), `train-groups`
(training and validation). For a split it may see the groups of, the harness hands it a
`GroupBatch` / `GroupSet` instead, the only types with a `group` field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Hashable, Iterator, NamedTuple

import torch
from torch import Tensor, nn

from datasets.base import DataInfo


class Batch(NamedTuple):
    """A training mini-batch: normalised images, targets, and dataset indices. No bias labels."""

    x: Tensor
    y: Tensor
    index: Tensor


GROUP_SPLITS = {"none": (), "valid-groups": ("valid", "valid_even"), "train-groups": ("train", "valid", "valid_even")}  # splits whose groups each level may see
SUPERVISION = tuple(GROUP_SPLITS)


class GroupBatch(NamedTuple):
    """A mini-batch with each sample's group `y * num_bias + bias`; only for methods whose
    `supervision` covers the batch's split."""

    x: Tensor
    y: Tensor
    index: Tensor
    group: Tensor


class TrainSet:
    """A whole split as a method may see it (for mining, clustering, statistics): the training
    split unless a stage names another.

    Holds the normalised-on-demand images, the targets and nothing else; `batches()` walks the
    split in order without augmentation.
    """

    __slots__ = ("_images", "y", "_prepare")

    def __init__(self, images: Tensor, y: Tensor, prepare: Callable[[Tensor], Tensor]):
        self._images = images
        self.y = y
        self._prepare = prepare

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int = 1024) -> Iterator[Batch]:
        for start in range(0, len(self.y), batch_size):
            index = torch.arange(start, min(start + batch_size, len(self.y)), device=self.y.device)
            yield Batch(self._prepare(self._images[index]), self.y[index], index)


class GroupSet(TrainSet):
    """A split with its group labels (`group`, one per sample): handed only to a method whose
    `supervision` covers the split. `batches()` yields `GroupBatch`es."""

    __slots__ = ("group",)

    def __init__(self, images: Tensor, y: Tensor, group: Tensor, prepare: Callable[[Tensor], Tensor]):
        super().__init__(images, y, prepare)
        self.group = group

    def batches(self, batch_size: int = 1024) -> Iterator[GroupBatch]:
        for batch in super().batches(batch_size):
            yield GroupBatch(*batch, self.group[batch.index])


LossFn = Callable[[Batch | GroupBatch], dict[str, Tensor]]


def same_every_step() -> Hashable:
    """The `graph_key` of a loss that takes the same path at every step: one graph serves all."""
    return 0


@dataclass
class Stage:
    """One stage of a method.

    A loss stage runs `steps` optimiser steps of `loss(batch)` (which returns {"loss": ..., other
    logs}) and steps the optimisers named in `optimizers` (all of the method's when empty). A
    once-only stage runs `run(train_set)` instead (mining, clustering) on its `split`; what it
    returns is stored with the job's results as diagnostics (a boolean mask over the training
    split is summarised by the harness, which alone holds the bias labels, as precision and
    recall; an integer vector over it, such as cluster ids, by its group sizes and purity). A
    loss stage draws its batches from `split` (`train`; PruSC fine-tunes on `valid`). `sample_weights`, when
    given, returns per-sample weights over the stage's split and batches are drawn from them
    with replacement; otherwise batches walk shuffled epochs (`drop_last` as the official code).
    `evaluate` marks stages that are evaluated (every `eval_every` steps when given, else the
    job's `eval_every`, and at their end); the last evaluated stage is the one selection rules
    pick checkpoints from. `on_start` runs when the stage starts or resumes (freezing weights,
    switching mask modes); `periodic = (n, fn)` calls `fn(train_set)` after every n-th step
    (statistics over the whole training split, such as DCWP's confidence average).
    `keep_best = (split, metric)` makes the harness keep the models of the stage's evaluation
    with the highest `metric` (a `group_metrics` key) on `split` and restore them at the stage's
    end (DeNetDM's official stage 1 hands its best epoch to stage 2); the harness computes the
    metric, so the method still never sees a bias label. `graph_key` lets the harness capture
    the stage's step in a CUDA graph (benchmark/training/graphs.py): it returns what the loss decides in
    Python at the next step (`same_every_step` for a loss without such decisions; None runs
    that step eagerly). A stage without it always runs eagerly. `refits` marks a once-only
    stage that changes the final predictor (DFR's last-layer refit): it is evaluated once at its
    end and counts as an evaluated stage.
    """

    name: str
    steps: int = 0
    loss: LossFn | None = None
    run: Callable[[TrainSet | GroupSet], dict[str, Any] | None] | None = None
    batch_size: int = 256
    optimizers: tuple[str, ...] = ()
    drop_last: bool = False
    sample_weights: Callable[[], Tensor] | None = None
    evaluate: bool = True
    split: str = "train"
    eval_every: int | None = None
    on_start: Callable[[], None] | None = None
    periodic: tuple[int, Callable[[TrainSet], None]] | None = None
    keep_best: tuple[str, str] | None = None
    graph_key: Callable[[], Hashable] | None = None
    refits: bool = False

    def __post_init__(self) -> None:
        if (self.loss is None) == (self.run is None):
            raise ValueError(f"stage {self.name!r} needs exactly one of `loss` or `run`")
        if self.refits and self.run is None:
            raise ValueError(f"stage {self.name!r}: only a once-only (`run`) stage can be marked `refits`")


class Method:
    """Base class: subclasses build models/optimisers in `setup` and list their `stages`.

    `self.hparams` holds the method's resolved hyperparameters (configs/methods/<name>.yaml),
    `self.info` the dataset's `DataInfo`. State listed in `state_keys` (attributes such as
    per-sample statistics; modules are saved by their state_dict) is checkpointed with the
    models and optimisers. The harness sets `self.step`, the index of the current optimiser
    step within the running stage, before each call of a stage's loss.

    `shared_stages` maps a stage to the hyperparameters that cannot change anything up to that
    stage's end (they configure later stages only). Jobs that differ only in those start from
    the saved state of whichever of them reached the stage first: a sweep over a pruning
    penalty pre-trains once per seed. The optimisers the shared stages step are restored with
    them; the others keep their own settings, since an optimiser that has not stepped holds no
    state.

    `supervision` (one of `SUPERVISION`) declares which group labels the method may see; see the
    module docstring. Tables mark every row with it.

    `neutral_defaults` names options added after results were stored, with the value at which
    they change nothing: the job id leaves them out at that value, so stored results stay found.
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    supervision: ClassVar[str] = "none"
    state_keys: ClassVar[tuple[str, ...]] = ()
    dense_stage: ClassVar[str | None] = None  # pruning methods: the stage whose end is the unpruned network
    shared_stages: ClassVar[dict[str, tuple[str, ...]]] = {}
    neutral_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, info: DataInfo, hparams: dict[str, Any], device: torch.device):
        self.info = info
        self.hparams = hparams
        self.device = torch.device(device)
        self.models = nn.ModuleDict()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.step = 0
        self.setup()
        self.models.to(self.device)

    def setup(self) -> None:
        raise NotImplementedError

    def stages(self) -> list[Stage]:
        raise NotImplementedError

    def predict(self, x: Tensor) -> Tensor:
        """Logits of the final model."""
        raise NotImplementedError

    def stage_steps(self, spec: dict[str, Any], split: str = "train") -> int:
        """A stage's `steps`, or its `epochs` over `split` at its `batch_size` (whole batches only
        when it has `drop_last`), as the official epoch-based loops count them."""
        if "steps" in spec:
            return int(spec["steps"])
        n, bs = self.info.size(split), int(spec["batch_size"])
        per_epoch = n // bs if spec.get("drop_last") else -(-n // bs)
        return int(spec["epochs"]) * per_epoch

    def train_mode(self) -> None:
        """Put the models in training mode for a loss stage (a method may keep frozen parts in eval mode)."""
        self.models.train()

    def sparsity(self) -> dict[str, float] | None:
        """Pruning methods: fraction of prunable weights masked to zero, overall and per layer."""
        return None

    def extra_state(self) -> dict[str, Any]:
        out = {}
        for k in self.state_keys:
            value = getattr(self, k)
            out[k] = value.state_dict() if isinstance(value, nn.Module) else value
        return out

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for k in self.state_keys:
            current = getattr(self, k)
            if isinstance(current, nn.Module):
                current.load_state_dict(state[k])
            else:
                setattr(self, k, state[k])
