"""`channels_last`: a labelled harness option (NHWC convolutions) that must change the layout, not
the computation, and must not change the ids of results stored before it existed."""
from __future__ import annotations

import json

import torch

from benchmark.grid.jobs import Job, canonical
from tests.helpers import harness, params

CNN = {"name": "cnn", "channels": [8, 16]}


def _first_conv(h) -> torch.nn.Conv2d:
    return next(m for m in h.method.models.modules() if isinstance(m, torch.nn.Conv2d))


def _run(data, channels_last: bool):
    h = harness("erm", data, steps=20, model=CNN, channels_last=channels_last)
    layouts = []
    conv = _first_conv(h)
    conv.register_forward_pre_hook(lambda _, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    h.run()
    return h, layouts


def test_channels_last_changes_the_layout_not_the_training(synthetic):
    plain, plain_layouts = _run(synthetic, False)
    nhwc, nhwc_layouts = _run(synthetic, True)
    assert nhwc_layouts and all(nhwc_layouts) and not any(plain_layouts)
    weight = _first_conv(nhwc).weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    after_plain, after_nhwc = params(plain.method), params(nhwc.method)
    assert not torch.equal(after_plain, params(harness("erm", synthetic, steps=20, model=CNN).method))  # it trained
    assert torch.allclose(after_plain, after_nhwc, atol=1e-4, rtol=1e-3)


def test_channels_last_is_part_of_the_id_only_when_set():
    def job(**extra) -> Job:
        hp = {"method": {"steps": 10, **extra}, "dataset": {}}
        return Job("erm", "cmnist", 1.0, 0, "paper", canonical(hp))

    assert job().id == job(channels_last=False).id
    assert job(channels_last=True).id != job().id
    assert json.loads(job(channels_last=True).hparams_json)["method"]["channels_last"] is True
