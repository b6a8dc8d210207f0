"""Backbones: ImageNet weights offline are one clear error; sizes the datasets give fit the models."""
import pytest
import torch

import datasets
from benchmark.errors import BenchError
from methods.models import TorchvisionResNet


def test_missing_imagenet_weights_offline_say_where_to_put_the_file(monkeypatch, tmp_path):
    import torch.hub

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(BenchError, match=r"resnet18-f37072fd\.pth .* at .*checkpoints"):
        TorchvisionResNet(18, 2, pretrained=True)


def test_resnet_from_scratch_gives_features_and_logits():
    net = TorchvisionResNet(18, 3)
    assert net.feature_dim == 512 and net(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


def test_an_input_larger_than_the_stored_images_is_refused(tmp_path):
    args = datasets.DATASETS["waterbirds"].make_fixture(tmp_path)
    with pytest.raises(BenchError, match="model input \\(80 px\\) is larger than the stored images"):
        datasets.load("waterbirds", 5.0, root=args["root"], side=64, input_size=80)


def test_weights_folder_is_used_and_checked(monkeypatch, tmp_path):
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    torch.save(net.state_dict(), tmp_path / "resnet18-f37072fd.pth")  # a file whose content does not match its name
    monkeypatch.setenv("DEBIASBENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(BenchError, match="does not match the hash in its name"):
        TorchvisionResNet(18, 2, pretrained=True)
    monkeypatch.setenv("DEBIASBENCH_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(BenchError, match="has no resnet18-f37072fd.pth"):
        TorchvisionResNet(18, 2, pretrained=True)
