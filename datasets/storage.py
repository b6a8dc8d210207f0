"""Where data is found and where built datasets are cached."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from benchmark.errors import BenchError

SHIPPED = Path(__file__).resolve().parent / "resources"


def data_root(root: Path | None) -> Path | None:
    """The user's data root: the `--data-root` flag, else $DEBIASBENCH_DATA, else none."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("DEBIASBENCH_DATA")
    return Path(env).expanduser() if env else None


def inside(base: Path, relative: str, what: str) -> Path:
    """`base / relative`, refused (one clear error) when `relative` is absolute or climbs out of
    `base` with `..`: a data folder option, a metadata file or a row in it never makes us read
    elsewhere. The check is on the path as written, so a data root that links elsewhere still works."""
    text = str(relative)
    normal = os.path.normpath(text)
    if os.path.isabs(text) or normal == ".." or normal.startswith(".." + os.sep):
        raise BenchError(f"{what} {text!r} points outside {base}: give a path relative to it, without '..'")
    return base / normal


def cache_dir() -> Path:
    """Where built datasets are cached: $DEBIASBENCH_CACHE, else ~/.cache/debiasbench."""
    env = os.environ.get("DEBIASBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "debiasbench"


def torchvision_download(dataset: str, label: str, root: Path | None, where_to_put: str) -> Path:
    """Let torchvision download `dataset` (a class of torchvision.datasets) into the data root
    (else ~/.cache/debiasbench/data) and return that folder; offline, one clear error."""
    target = data_root(root) or Path.home() / ".cache" / "debiasbench" / "data"
    try:
        import torchvision.datasets

        getattr(torchvision.datasets, dataset)(str(target), download=True)
    except Exception as e:  # torchvision raises many kinds when offline
        raise BenchError(f"{label} not found and could not be downloaded ({type(e).__name__}): {where_to_put}") from None
    return target


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_cached(path: Path) -> dict[str, np.ndarray] | None:
    """Arrays of a cache file, or None when it is missing or unreadable (it is then rebuilt)."""
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return None


def save_cached(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a cache file atomically; a cache that cannot be written is skipped, not fatal."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        return


def require_file(path: Path, expected_md5: str, what_to_do: str) -> Path:
    """Check a data file's checksum; a mismatch is one clear error naming the file."""
    actual = md5(path)
    if actual != expected_md5:
        raise BenchError(f"{path} is corrupt (md5 {actual}, expected {expected_md5}): {what_to_do}")
    return path
