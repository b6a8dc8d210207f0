"""How the harness feeds a method: the splits as uint8 on the device (or streamed from host
memory when they do not fit), batches drawn by index, augmented and normalised on the device.

Placement (`RuntimeOptions.data_placement`, `--data-placement`):
- `device`: every split's images live on the device; a batch is one gather there.
- `host`: the images stay in host memory; each batch is gathered on the host into pinned memory
  by a background thread one step ahead (while the device runs the current step) and copied
  asynchronously. Targets, bias labels and indices stay on the device. For datasets larger than
  the GPU (all of CelebA at 256 px is about 40 GB).
- `auto` (default): `device` unless the images would take more than half of the GPU's free memory.
Both placements draw the same indices and augmentations, so a job's results do not depend on it.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch
from torch import Tensor

from benchmark.training.augment import center_crop
from benchmark.errors import BenchError
from datasets.base import BiasedData
from methods.base import Batch, GroupBatch, GroupSet, TrainSet

PLACEMENTS = ("auto", "device", "host")
_PREFETCH: ThreadPoolExecutor | None = None  # one background thread for every streamed split of the process
DEVICE_SHARE = 0.5  # `auto` keeps the images on the GPU when they take at most this share of its free memory


def choose_placement(data: BiasedData, device: torch.device, placement: str) -> str:
    """`device` or `host` for this dataset on this device (see the module docstring)."""
    if placement not in PLACEMENTS:
        raise BenchError(f"data placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    if placement != "auto":
        return placement
    if device.type != "cuda":
        return "device"
    image_bytes = sum(s.x.numel() for s in data.splits.values())
    free, _ = torch.cuda.mem_get_info(device)
    return "device" if image_bytes <= DEVICE_SHARE * free else "host"


class HostImages:
    """uint8 images kept in host memory; indexing returns the selected images on the device.

    Batches are gathered into pinned buffers, so their copy to the GPU does not block the host;
    `prefetch(index)` starts the next batch's gather in a background thread.
    """

    def __init__(self, x: Tensor, device: torch.device):
        self.x, self.device = x, device
        self.shape, self.dtype = x.shape, x.dtype
        self._ahead: tuple[Tensor, Future[Tensor]] | None = None

    def __len__(self) -> int:
        return len(self.x)

    def _gather(self, index: Tensor) -> Tensor:
        out = torch.empty((len(index), *self.x.shape[1:]), dtype=self.x.dtype, pin_memory=self.device.type == "cuda")
        return torch.index_select(self.x, 0, index, out=out)

    def prefetch(self, index: Tensor | None) -> None:
        """Start gathering the images at host `index` (the next batch); None does nothing."""
        global _PREFETCH
        if index is None:
            self._ahead = None
            return
        if _PREFETCH is None:
            _PREFETCH = ThreadPoolExecutor(max_workers=1, thread_name_prefix="debiasbench-prefetch")
        self._ahead = (index, _PREFETCH.submit(self._gather, index))

    def __getitem__(self, index: Tensor | slice) -> Tensor:
        if isinstance(index, slice):
            return self.x[index].to(self.device, non_blocking=True)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and index.device.type == "cpu" and torch.equal(ahead[0], index):
            images = ahead[1].result()
        else:
            images = self._gather(index.cpu())
        return images.to(self.device, non_blocking=True)


class DeviceData:
    """Every split as uint8 images (on the device, or streamed from the host) with on-device normalisation."""

    def __init__(self, data: BiasedData, device: torch.device, placement: str = "device", channels_last: bool = False):
        self.info = data.info
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.placement = choose_placement(data, device, placement)
        self.splits: dict[str, tuple[Tensor | HostImages, Tensor, Tensor]] = {
            name: (s.x.to(device) if self.placement == "device" else HostImages(s.x, device), s.y.to(device), s.bias.to(device))
            for name, s in data.splits.items()
        }
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.info.mean, device=device, dtype=torch.float32).view(shape)
        std = torch.tensor(self.info.std, device=device, dtype=torch.float32).view(shape)
        self.scale = 1.0 / (std * 255.0)
        self.shift = -mean / std

    @property
    def streamed(self) -> bool:
        return self.placement == "host"

    def prepare(self, x: Tensor) -> Tensor:
        """uint8 images -> the model's input for evaluation (and whole-split passes such as mining):
        centre-cropped to the input size, scaled to [0, 1] and normalised by the dataset's mean/std."""
        return self._normalise(center_crop(x, self.info.augmentation.size).float())

    def _normalise(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.shift, x, self.scale).contiguous(memory_format=self.memory_format)

    def train_batch(self, index: Tensor, split: str = "train", generator: torch.Generator | None = None,
                    groups: bool = False) -> Batch | GroupBatch:
        """Images and targets of `split` at `index`, augmented with the dataset's training transform
        when a generator is given (loss stages pass the harness's). The bias attribute enters only
        as the group labels of a `GroupBatch`, with `groups` (which the harness sets from the
        method's declared supervision)."""
        x, y, bias = self.splits[split]
        images = x[index]
        index = index.to(self.device, non_blocking=True)
        if generator is None or self.info.augmentation.kind == "none":
            batch = Batch(self.prepare(images), y[index], index)
        else:
            batch = Batch(self._normalise(self.info.augmentation(images.float(), generator)), y[index], index)
        return GroupBatch(*batch, self.info.group_of(y[index], bias[index])) if groups else batch

    def prefetch(self, split: str, index: Tensor | None) -> None:
        """Start gathering the next batch of a streamed split (nothing to do when it is on the device)."""
        x = self.splits[split][0]
        if isinstance(x, HostImages):
            x.prefetch(index)

    def train_set(self, split: str = "train", groups: bool = False) -> TrainSet | GroupSet:
        """A whole split for a once-only stage: with its group labels (a `GroupSet`) only with `groups`."""
        x, y, bias = self.splits[split]
        return GroupSet(x, y, self.info.group_of(y, bias), self.prepare) if groups else TrainSet(x, y, self.prepare)

    def aligned_mask(self) -> list[bool]:
        c, b = self.info.num_classes, self.info.num_bias
        ys = torch.arange(c).repeat_interleave(b)
        bs = torch.arange(b).repeat(c)
        return self.info.is_aligned(ys, bs).tolist()


class EpochSampler:
    """Shuffled epochs drawn on the device; the last partial batch is kept unless `drop_last`.

    With `on_host`, each epoch's permutation (still drawn by the device generator, so the order
    is the same) is copied to the host once and batches are host indices, which a streamed split
    gathers without waiting on the device; `peek()` names the next batch for prefetching.
    """

    def __init__(self, n: int, batch_size: int, drop_last: bool, generator: torch.Generator, on_host: bool = False):
        if batch_size > n and drop_last:
            raise BenchError(f"batch size {batch_size} exceeds the {n} training samples with drop_last")
        self.n, self.batch_size, self.drop_last, self.generator = n, batch_size, drop_last, generator
        self.on_host = on_host
        self.perm: Tensor | None = None
        self.perm_host: Tensor | None = None
        self.pos = 0

    def _epoch_over(self) -> bool:
        return self.perm is None or self.pos >= self.n or (self.drop_last and self.pos + self.batch_size > self.n)

    def next(self) -> Tensor:
        if self._epoch_over():
            self.perm = torch.randperm(self.n, generator=self.generator, device=self.generator.device)
            self.perm_host = self.perm.cpu() if self.on_host else None
            self.pos = 0
        order = self.perm_host if self.on_host else self.perm
        index = order[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return index

    def peek(self) -> Tensor | None:
        """The host indices of the next batch when they are known (same epoch, host mode), else None."""
        if not self.on_host or self._epoch_over():
            return None
        return self.perm_host[self.pos:self.pos + self.batch_size]

    def state_dict(self) -> dict[str, Any]:
        return {"perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.perm, self.pos = state["perm"], state["pos"]
        self.perm_host = self.perm.cpu() if self.on_host and self.perm is not None else None


class WeightedSampler:
    """Batches drawn with replacement in proportion to per-sample weights."""

    def __init__(self, weights: Tensor, batch_size: int, generator: torch.Generator):
        self.weights, self.batch_size, self.generator = weights.float(), batch_size, generator

    def next(self) -> Tensor:
        return torch.multinomial(self.weights, self.batch_size, replacement=True, generator=self.generator)

    def peek(self) -> Tensor | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None
