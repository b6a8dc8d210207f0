"""Every registered method x every registered dataset it declares settings for, on that dataset's
fixture: built from its default config, stepped a few times through every stage, evaluated.
Grows with the registries by itself."""
import pytest
import torch

import datasets
import methods
from benchmark.config import dataset_config, method_hparams, supports
from benchmark.training.harness import DeviceData, Harness, RuntimeOptions, seed_everything
from benchmark.selection import select_all


def _for_fixture(spec):
    """Every `pretrained: true` turned off (ImageNet weights are not available offline; their
    loading and its error are tested in tests/test_models.py) and every batch at most 8 images, so
    that a ResNet step on a fixture stays cheap on CPU: this test checks that every stage runs."""
    if isinstance(spec, dict):
        out = {k: _for_fixture(v) for k, v in spec.items()}
        if "pretrained" in out:
            out["pretrained"] = False
        if isinstance(out.get("batch_size"), int):
            out["batch_size"] = min(out["batch_size"], 8)
        return out
    return spec


def _fixture_args(name, tmp_path):
    entry = datasets.DATASETS[name]
    if entry.make_fixture is not None:
        return entry.make_fixture(tmp_path)
    return {"root": None, "conflict_pct": dataset_config(name)["conflict_pcts"][0]}


def _small(data, keep: int = 2000):
    """A generated dataset (Colored MNIST: 60,000 training images) cut to `keep` random images per split:
    this test checks that every stage runs, and mining or evaluating 70,000 images through a CNN
    would be most of its time."""
    from datasets.base import BiasedData, Split

    g = torch.Generator().manual_seed(0)
    splits = {}
    for name, split in data.splits.items():
        idx = torch.randperm(len(split), generator=g)[:keep]
        splits[name] = Split(split.x[idx], split.y[idx], split.bias[idx])
    return BiasedData(splits, data.info, {})


PAIRS = [(m, d) for m in sorted(methods.METHODS) for d in sorted(datasets.DATASETS) if supports(m, d)]


def test_every_method_and_dataset_takes_part():
    """Support is declared per method, but no method may declare nothing and no dataset be left out."""
    assert {m for m, _ in PAIRS} == set(methods.METHODS)
    assert {d for _, d in PAIRS} == set(datasets.DATASETS)


@pytest.mark.parametrize("method, dataset", PAIRS)
def test_method_runs_every_stage_on_dataset_fixture(method, dataset, tmp_path):
    args = _fixture_args(dataset, tmp_path)
    options = {**dataset_config(dataset)["options"], **args.get("options", {})}
    if methods.METHODS[method].supervision == "valid-groups" and "valid_fraction" in options:
        options["valid_fraction"] = 0.2  # its fixture has no validation split otherwise
    data = _small(datasets.load(dataset, args["conflict_pct"], root=args.get("root"), **options))
    hp = _for_fixture(method_hparams(method, dataset, "quick", conflict_pct=args["conflict_pct"]))
    seed_everything(0)
    m = methods.build(method, data.info, hp, torch.device("cpu"))
    result = Harness(m, data, 0, eval_every=hp.get("eval_every", 0), runtime=RuntimeOptions(max_stage_steps=3, log_every=2)).run()
    stages = m.stages()
    assert set(result.timings) == {s.name for s in stages}
    chosen = select_all(result.curve, result.group_total, result.aligned, result.final_stage)
    assert 0.0 <= chosen["last"]["test"]["unbiased_acc"] <= 1.0
    with torch.no_grad():
        x = DeviceData(data, torch.device("cpu")).prepare(data.splits["test"].x[:5])
        assert m.predict(x).shape == (5, data.info.num_classes)
