"""On-device augmentation against the torchvision transforms it replaces.

Distributions: 20,000 crop boxes and flips drawn by us and by torchvision's own `get_params`,
compared with the two-sample Kolmogorov-Smirnov statistic (at this size, 0.02 is far above the
sampling noise of identical distributions, about 0.01, and far below the gap a wrong rule makes).
Pixels: a crop we draw, applied by us, equals torchvision's functional crop with the same box.
"""
import math

import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF

from benchmark.training.augment import (Augmentation, center_crop, crop_offsets, random_crop, random_flip,
                               random_resized_crop, resized_crop_boxes)
from benchmark.errors import BenchError

N = 20000


def ks(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    a, b = a.double().sort().values, b.double().sort().values
    grid = torch.cat([a, b]).unique()
    cdf_a = torch.searchsorted(a, grid, right=True).double() / len(a)
    cdf_b = torch.searchsorted(b, grid, right=True).double() / len(b)
    return float((cdf_a - cdf_b).abs().max())


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("height,width", [(256, 256), (200, 320)])
def test_resized_crop_boxes_follow_torchvision(height, width):
    scale, ratio = (0.7, 1.0), (3 / 4, 4 / 3)
    ours = resized_crop_boxes(N, height, width, scale, ratio, gen()).double()
    torch.manual_seed(0)
    img = torch.zeros(1, height, width)
    theirs = torch.tensor([T.RandomResizedCrop.get_params(img, list(scale), list(ratio)) for _ in range(N)]).double()
    for col, name in enumerate(("top", "left", "height", "width")):
        assert ks(ours[:, col], theirs[:, col]) < 0.02, name
    area = lambda b: b[:, 2] * b[:, 3] / (height * width)  # noqa: E731
    assert ks(area(ours), area(theirs)) < 0.02
    assert ks(torch.log(ours[:, 3] / ours[:, 2]), torch.log(theirs[:, 3] / theirs[:, 2])) < 0.02
    assert (ours[:, 0] + ours[:, 2] <= height).all() and (ours[:, 1] + ours[:, 3] <= width).all()


def test_impossible_ratios_fall_back_to_torchvision_centre_crop():
    ours = resized_crop_boxes(100, 40, 400, (0.9, 1.0), (0.9, 1.1), gen())
    torch.manual_seed(0)
    theirs = T.RandomResizedCrop.get_params(torch.zeros(1, 40, 400), [0.9, 1.0], [0.9, 1.1])
    assert (ours == torch.tensor(theirs)).all()


def test_random_crop_offsets_and_flips_follow_torchvision():
    top, left = crop_offsets(N, 8, 8, gen())
    torch.manual_seed(0)
    img = torch.zeros(1, 40, 40)
    theirs = torch.tensor([T.RandomCrop.get_params(img, (32, 32))[:2] for _ in range(N)])
    assert ks(top, theirs[:, 0]) < 0.02 and ks(left, theirs[:, 1]) < 0.02
    assert set(top.tolist()) == set(range(9))
    x = torch.arange(4.0).view(1, 1, 1, 4).expand(N, 1, 1, 4)
    flipped = (random_flip(x, gen())[:, 0, 0, 0] == 3).float().mean()
    assert abs(float(flipped) - 0.5) < 0.015


def test_crops_are_the_exact_pixels_of_torchvision_crops():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 32, 32), generator=g).float()
    out = random_crop(x, 32, 4, gen(3))
    top, left = crop_offsets(16, 8, 8, gen(3))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(16):
        assert torch.equal(out[i], TF.crop(padded[i], int(top[i]), int(left[i]), 32, 32))
    assert torch.equal(center_crop(x, 24), TF.center_crop(x, [24, 24]))


def test_resized_crop_resamples_the_drawn_box():
    """Upsampling a box with grid_sample matches torchvision's bilinear resize of the same box
    (no antialiasing is involved when enlarging) up to float rounding."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, 64, 64, generator=g) * 255
    out = random_resized_crop(x, 96, (0.3, 0.6), (3 / 4, 4 / 3), gen(5))
    boxes = resized_crop_boxes(8, 64, 64, (0.3, 0.6), (3 / 4, 4 / 3), gen(5))
    for i in range(8):
        top, left, h, w = boxes[i].tolist()
        ref = TF.resized_crop(x[i], top, left, h, w, [96, 96], antialias=False)
        assert torch.allclose(out[i], ref, atol=1e-3), i


def test_augmentation_kinds_shapes_and_errors():
    x = torch.rand(4, 3, 36, 36)
    assert Augmentation("crop_flip", size=32, padding=4)(x[..., :32, :32], gen()).shape == (4, 3, 32, 32)
    assert Augmentation("resized_crop_flip", size=24, scale=(0.7, 1.0))(x, gen()).shape == (4, 3, 24, 24)
    assert Augmentation("none", size=32)(x, gen()).shape == (4, 3, 32, 32)
    assert math.isclose(float(Augmentation("flip")(x, gen()).mean()), float(x.mean()), rel_tol=1e-6)
    with pytest.raises(BenchError, match="unknown augmentation"):
        Augmentation("mixup")
    with pytest.raises(BenchError, match="store them at least"):
        center_crop(x, 40)
