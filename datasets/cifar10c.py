"""Corrupted CIFAR-10 by the LfF protocol (Nam et al., NeurIPS 2020; DeNetDM's tables use it too).

Input: CIFAR-10 images, each with one of ten corruptions, 3 x 32 x 32 uint8. Target: the object
class. Bias: the corruption, LfF's "Type0" list by class order (datasets/corruptions.py: class c's
aligned corruption is 0 Snow, 1 Frost, 2 Fog, 3 Brightness, 4 Contrast, 5 Spatter, 6 Elastic,
7 JPEG, 8 Pixelate, 9 Saturate), at LfF's `severity4` = Hendrycks & Dietterich's level 5 with
CIFAR-scale parameters.

Which images are bias-conflicting is fixed by CIFAR-10's order, as in LfF's `make_attr_labels`
(datasets/lff_protocol.py): 250/500/1,000/2,500 of the 50,000 training images at 0.5/1/2/5 %.
Splits: `train` = CIFAR-10's training set; `test` = its test set with every (class, corruption)
cell holding exactly 100 images (LfF's "valid"). `valid_fraction` > 0 holds out a validation
split from the training images, corrupted evenly, like training or half each (`valid_bias`), as for `cmnist`.

Randomness (snow flakes, frost crops, fog, spatter, elastic) comes from the dataset seed and the
image's index, never the job seed, so every job of a grid trains on the same images and a rebuild
is identical. LfF's generator was unseeded, so our images equal LfF's up to those draws.
This is not the DisEnt authors' release (`cifar10c-disent`), which holds other corruptions:
numbers on the two are reported apart. Training transform: RandomCrop(32, padding 4) +
horizontal flip on the device, CIFAR mean/std normalisation (LfF `data/util.py:49-73`).
Citation: Nam et al. 2020; Hendrycks & Dietterich, ICLR 2019; CIFAR-10: Krizhevsky 2009.
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from benchmark.training.augment import Augmentation
from benchmark.errors import BenchError
from datasets.base import BiasedData, DataInfo, register_dataset
from datasets.corruptions import FROST_FILES, OFFICIAL_FROST_MD5, corrupt, frost_folder, frost_textures
from datasets.images import CIFAR_MEAN, CIFAR_STD
from datasets.lff_protocol import build_protocol_arrays, check_valid_bias, splits_from_arrays, valid_key
from datasets.storage import cache_dir, data_root, load_cached, md5, save_cached, torchvision_download

GENERATOR_VERSION = "lff-cifar10c-type0-1"
FOLDER = "cifar-10-batches-py"  # torchvision's layout
# torchvision.datasets.CIFAR10's checksums of the extracted files
CIFAR_FILES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
SPLIT_STREAM = {"train": 0, "valid": 1, "test": 2, "valid_even": 3}


# What a CIFAR-10 batch file may name besides dicts, lists, strings and numbers: NumPy's array
# reconstruction (under NumPy 1 and 2 module names, pickle protocols 2-5) and bytes decoding.
ARRAY_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})


class ArrayUnpickler(pickle.Unpickler):
    """Reads a CIFAR-10 batch without running code: any other class or function a file names
    (a planted payload's `os.system`, say) is refused before it is called."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refused {module}.{name}: a CIFAR-10 batch holds only arrays and lists")
        return super().find_class(module, name)


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            entry = ArrayUnpickler(f, encoding="latin1").load()
        images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = np.asarray(entry["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise BenchError(f"{path} is not a CIFAR-10 batch file ({e}): unpack cifar-10-python.tar.gz into the data root again") from None
    return images, labels


def _download(root: Path | None) -> Path:
    where = f"put torchvision's {FOLDER}/ (from cifar-10-python.tar.gz) in the data root and pass --data-root"
    return torchvision_download("CIFAR10", "CIFAR-10", root, where) / FOLDER


def load_cifar10(root: Path | None, verify: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10 as uint8 HWC arrays: {"train": (50,000 images, labels), "test": (10,000, labels)}."""
    base = data_root(root)
    folder = base / FOLDER if base is not None and (base / FOLDER).is_dir() else _download(root)
    for name, expected in CIFAR_FILES.items():
        path = folder / name
        if not path.exists():
            raise BenchError(f"CIFAR-10 file {path} is missing: unpack cifar-10-python.tar.gz into the data root again")
        if verify and md5(path) != expected:
            raise BenchError(f"{path} is not the original CIFAR-10 file (md5 differs): replace it, or "
                             "--set cifar10c.verify=false for a deliberately re-packed copy")
    train = [_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    return {
        "train": (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        "test": _batch(folder / "test_batch"),
    }


def corrupt_split(images: np.ndarray, bias: np.ndarray, seed: int, split: str, textures: tuple[np.ndarray, ...],
                  progress: bool = True) -> np.ndarray:
    """uint8 (N, 3, 32, 32): image i with corruption bias[i], its random draws seeded by (seed, split, i)."""
    out = np.empty((len(images), 3, 32, 32), dtype=np.uint8)
    for i in tqdm(range(len(images)), desc=f"cifar10c {split}: corrupting", disable=not progress or len(images) < 1000,
                  unit="img", leave=False):
        rng = np.random.RandomState([seed, SPLIT_STREAM[split], i])
        out[i] = corrupt(images[i], int(bias[i]), rng, textures).transpose(2, 0, 1)
    return out


def make_fixture(tmp: Path) -> dict:
    """A tiny CIFAR-10 in torchvision's layout (20 training and 10 test images per class) and
    three-channel noise "frost photographs" (so no extra is needed); read at 10 % conflicting."""
    rng = np.random.default_rng(0)
    folder = tmp / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name in CIFAR_FILES:
        per_class = 10 if name == "test_batch" else 4
        labels = np.repeat(np.arange(10), per_class)
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels.tolist()}, f, protocol=2)  # as the release's Python 2 files
    frost = tmp / "frost"
    frost.mkdir(exist_ok=True)
    for name in FROST_FILES:
        Image.fromarray(rng.integers(0, 256, (200, 220, 3), dtype=np.uint8)).save(frost / name)
    return {"root": tmp, "conflict_pct": 10.0, "options": {"frost_dir": str(frost), "verify": False}}


@register_dataset("cifar10c", make_fixture=make_fixture)
def load_cifar10c(root: Path | None, conflict_pct: float, seed: int = 0, severity: int = 4, valid_fraction: float = 0.0,
                  valid_bias: str = "even", frost_dir: str | None = None, verify: bool = True) -> BiasedData:
    """Corrupted CIFAR-10, LfF protocol, Type0 corruptions (generated from CIFAR-10; LfF's and DeNetDM's tables)."""
    if not 0 < conflict_pct < 100:
        raise BenchError(f"cifar10c: conflict_pct must be in (0, 100), got {conflict_pct:g}; the papers use 0.5 1 2 5")
    if severity != 4:
        raise BenchError(f"cifar10c: only severity 4 (LfF's README, DeNetDM, the papers) is implemented, got {severity}")
    if not 0 <= valid_fraction < 1:
        raise BenchError(f"cifar10c: valid_fraction must be in [0, 1), got {valid_fraction}")
    check_valid_bias(valid_bias)
    folder = frost_folder(frost_dir)
    texture_md5 = {name: md5(folder / name) for name in FROST_FILES[:5]}
    textures_key = hashlib.sha256("".join(texture_md5.values()).encode()).hexdigest()[:12]
    key = f"{GENERATOR_VERSION}_c{conflict_pct:g}_s{seed}_sev{severity}_{valid_key(valid_fraction, valid_bias)}_frost{textures_key}"
    base = data_root(root)
    source = f"{base}/{FOLDER}" if base is not None else "download"
    path = cache_dir() / "cifar10c" / hashlib.sha256(source.encode()).hexdigest()[:8] / f"{key}.npz"
    arrays = load_cached(path)
    if arrays is None:
        textures = frost_textures(folder)
        cifar = load_cifar10(root, verify)
        arrays = build_protocol_arrays(
            cifar["train"], cifar["test"], conflict_pct, seed, valid_fraction,
            lambda split, images, bias: corrupt_split(images, bias, seed, split, textures), valid_bias,
        )
        save_cached(path, arrays)
    info = DataInfo(
        name="cifar10c", num_classes=10, num_bias=10, image_shape=(3, 32, 32), mean=CIFAR_MEAN, std=CIFAR_STD,
        augmentation=Augmentation("crop_flip", size=32, padding=4), input_kind="cifar",
    )
    fingerprint = {"generator": GENERATOR_VERSION, "seed": seed, "severity": severity, "valid_fraction": valid_fraction,
                   **({"valid_bias": valid_bias} if valid_bias != "even" else {}),
                   "frost_official": texture_md5 == OFFICIAL_FROST_MD5}
    return BiasedData(splits_from_arrays(arrays), info, fingerprint)
