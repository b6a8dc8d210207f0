"""Data placement: streaming the images from host memory trains exactly as keeping them on the device."""
import pytest
import torch

import datasets
from benchmark.errors import BenchError
from benchmark.training.feed import DeviceData, EpochSampler, HostImages, choose_placement
from benchmark.training.harness import Interrupted, RuntimeOptions
from tests.helpers import params, train


@pytest.mark.parametrize("method", ["erm", "prusc"])  # prusc: whole-split passes, clustering, balanced sampling
def test_host_and_device_placements_train_identically(synthetic, method):
    runs = [train(method, synthetic, seed=1, runtime=RuntimeOptions(max_stage_steps=60, data_placement=p)) for p in ("device", "host")]
    (m_dev, r_dev), (m_host, r_host) = runs
    assert torch.equal(params(m_dev), params(m_host))
    assert r_dev.curve == r_host.curve


def test_augmented_batches_are_the_same_streamed(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBIASBENCH_CACHE", str(tmp_path / "cache"))
    args = datasets.DATASETS["cifar10c"].make_fixture(tmp_path)
    data = datasets.load("cifar10c", args["conflict_pct"], args["root"], **args["options"])
    assert data.info.augmentation.kind == "crop_flip"
    batches = []
    for placement in ("device", "host"):
        feed = DeviceData(data, torch.device("cpu"), placement)
        g = torch.Generator().manual_seed(0)
        sampler = EpochSampler(len(data.splits["train"]), 16, False, torch.Generator().manual_seed(1), on_host=feed.streamed)
        out = []
        for _ in range(30):  # more than one epoch of 200 images
            out.append(feed.train_batch(sampler.next(), "train", g))
            feed.prefetch("train", sampler.peek())
        batches.append(out)
    for a, b in zip(*batches):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.index, b.index)


def test_a_streamed_job_resumes_to_the_same_numbers(synthetic, tmp_path):
    full_model, full = train("erm", synthetic, steps=250, eval_every=50)
    ckpt = tmp_path / "job.pt"
    with pytest.raises(Interrupted):
        train("erm", synthetic, steps=250, eval_every=50,
              runtime=RuntimeOptions(checkpoint_path=ckpt, stop_after_steps=130, data_placement="host"))
    resumed_model, resumed = train("erm", synthetic, steps=250, eval_every=50,
                                   runtime=RuntimeOptions(checkpoint_path=ckpt, data_placement="host"))
    assert resumed.resumed_from_step == 130
    assert torch.equal(params(full_model), params(resumed_model)) and resumed.curve == full.curve


def test_prefetched_batches_are_used_and_equal_direct_gathers():
    x = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8)
    images = HostImages(x, torch.device("cpu"))
    gathers = []
    real = images._gather
    images._gather = lambda index: gathers.append(len(index)) or real(index)
    index = torch.tensor([3, 1, 4, 1, 5])
    images.prefetch(index.clone())
    assert torch.equal(images[index], x[index])
    assert gathers == [5]  # served by the prefetch, not gathered again
    assert torch.equal(images[torch.tensor([9, 2])], x[[9, 2]]) and gathers == [5, 2]
    assert torch.equal(images[2:7], x[2:7])


def test_placement_choice_and_errors(synthetic):
    assert choose_placement(synthetic, torch.device("cpu"), "auto") == "device"
    assert choose_placement(synthetic, torch.device("cpu"), "host") == "host"
    with pytest.raises(BenchError, match="data placement must be one of auto, device, host"):
        choose_placement(synthetic, torch.device("cpu"), "gpu")
