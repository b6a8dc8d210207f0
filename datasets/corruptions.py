"""LfF's ten "Type0" corruptions of Corrupted CIFAR-10, at its CIFAR-scale strength (severity4).

LfF (`data/corrupted_cifar10_protocol.py`, Hendrycks & Dietterich's CIFAR-10-C functions) maps
class c to corruption c of: 0 Snow, 1 Frost, 2 Fog, 3 Brightness, 4 Contrast, 5 Spatter,
6 Elastic, 7 JPEG, 8 Pixelate, 9 Saturate. Its config `severity4` calls each function at level 5,
the strongest; the parameters below are LfF's level-5 values (spec E.2.3), named where they are used.

Why written here rather than imported: the `imagecorruptions` package fixes each function's
parameters to its ImageNet-scale table, and only one of them (Brightness, its severity 3 = +0.3)
equals a CIFAR level-5 value; the LfF originals need ImageMagick (Wand) and library APIs removed
in current NumPy/scikit-image. Each function below does what LfF's does, in NumPy and PIL, and
draws its random numbers from the given `RandomState` in LfF's order, so LfF's function seeded
the same way gives the same image (tests/test_cifar10c.py checks each strength). Two
deliberate differences, both documented where they happen:
- Snow's motion blur is ImageMagick's MotionBlurImage kernel (one-sided Gaussian along the angle,
  edge pixels repeated), written out instead of called through Wand;
- Frost's texture is downscaled with plain bilinear sampling (OpenCV's INTER_LINEAR rule) in
  float, where OpenCV uses 11-bit fixed point (texture values may differ by 1/255).
Frost needs the six frost photographs of Hendrycks & Dietterich (Apache-2.0). They ship with
`imagecorruptions` (`pip install -e .[cifar]`), or pass a folder holding them.

Every function takes uint8 (32, 32, 3) RGB and returns float (or uint8) values in [0, 255]; the
caller truncates to uint8 as LfF's `np.array(...).astype(np.uint8)` does.
"""
from __future__ import annotations

import importlib.util
import io
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.errors import BenchError

SIDE = 32
TYPE0 = ("snow", "frost", "fog", "brightness", "contrast", "spatter", "elastic", "jpeg", "pixelate", "saturate")
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
# md5 of the five photographs LfF draws from (its data/resource/, byte-identical in imagecorruptions 1.1.2)
OFFICIAL_FROST_MD5 = {
    "frost1.png": "6ead634ace1f366d77e87078b465863c",
    "frost2.png": "98f0d2b1d74a048d3bc9c7ecfd886939",
    "frost3.png": "b3ed8eb147824261888e730f916c0d8b",
    "frost4.jpg": "d70b9d6aa0b1fe7bd8133b113787e078",
    "frost5.jpg": "50984ae2c871b7df2c28f1d71ca460a0",
}


# ----- helpers -----------------------------------------------------------------------------
def gaussian_filter(a: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """Separable Gaussian blur over the first two axes (scipy.ndimage / skimage.filters.gaussian).

    `mode` is scipy's border rule: `nearest` repeats the edge, `reflect` mirrors it (d c b a | a b c d).
    """
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * offsets**2 / sigma**2)
    kernel /= kernel.sum()
    pad_mode = {"nearest": "edge", "reflect": "symmetric"}[mode]
    out = np.asarray(a, dtype=np.float64)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode=pad_mode)
        n = out.shape[axis]
        out = sum(w * np.take(padded, np.arange(k, k + n), axis=axis) for k, w in enumerate(kernel))
    return out


def zoom_center(layer: np.ndarray, factor: float) -> np.ndarray:
    """Crop the centre 1/factor of a square map and zoom it back to full size, bilinearly.

    LfF's `clipped_zoom`: scipy's `zoom(order=1)` maps output pixel i to input i * (n_in - 1) / (n_out - 1).
    """
    h = layer.shape[0]
    crop = int(np.ceil(h / factor))
    top = (h - crop) // 2
    part = layer[top:top + crop, top:top + crop]
    out_size = int(round(crop * factor))
    coords = np.arange(out_size) * (crop - 1) / (out_size - 1)
    lo = np.floor(coords).astype(int)
    hi = np.minimum(lo + 1, crop - 1)
    w = coords - lo
    rows = part[lo] * (1 - w)[:, None] + part[hi] * w[:, None]
    zoomed = rows[:, lo] * (1 - w)[None, :] + rows[:, hi] * w[None, :]
    trim = (zoomed.shape[0] - h) // 2
    return zoomed[trim:trim + h, trim:trim + h]


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] -> HSV in [0, 1] (skimage.color.rgb2hsv's rule: hue 0 where the pixel is grey)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(-1)
    delta = v - rgb.min(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(v == 0, 0.0, delta / v)
        safe = np.where(delta == 0, 1.0, delta)
        h = np.where(r == v, (g - b) / safe, 0.0)
        h = np.where(g == v, 2.0 + (b - r) / safe, h)
        h = np.where(b == v, 4.0 + (r - g) / safe, h)
    h = np.where(delta == 0, 0.0, (h / 6.0) % 1.0)
    return np.stack([h, s, v], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_hsv` (skimage.color.hsv2rgb's sector rule)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    sector = np.floor(h * 6.0)
    f = h * 6.0 - sector
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    sector = sector.astype(np.int64) % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    return np.stack([np.choose(sector, [c[k] for c in choices]) for k in range(3)], axis=-1)


def motion_blur(gray: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick's MotionBlurImage on an 8-bit grey image (what LfF calls through Wand).

    Pixel p becomes sum_i k_i * image(p + offset_i) for i < 2 * radius + 1, with k_i proportional to
    exp(-i^2 / (2 sigma^2)) and offset_i = ceil(i * (cos a, sin a) - 0.5): a trail behind each
    pixel along `angle` degrees; pixels beyond the border repeat the edge. Rounded to 8 bits as
    the PNG that LfF reads back.
    """
    width = 2 * radius + 1
    steps = np.arange(width)
    kernel = np.exp(-(steps.astype(np.float64) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    rad = math.radians(angle)
    off_x = np.ceil(steps * math.cos(rad) - 0.5).astype(int)
    off_y = np.ceil(steps * math.sin(rad) - 0.5).astype(int)
    h, w = gray.shape
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    out = np.zeros((h, w))
    for k, dx, dy in zip(kernel, off_x, off_y):
        out += k * gray[np.clip(rows + dy, 0, h - 1), np.clip(cols + dx, 0, w - 1)]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def plasma_fractal(rng: np.random.RandomState, size: int = SIDE, decay: float = 1.75) -> np.ndarray:
    """Diamond-square height map in [0, 1] (LfF's fog texture), with LfF's draw order and scale.

    Each new point is the mean of its four neighbours (wrapping around) plus wobble * U(-wobble, wobble);
    the wobble starts at 100 and is divided by `decay` per level.
    """
    grid = np.zeros((size, size))
    step, wobble = size, 100.0

    def jitter(total: np.ndarray) -> np.ndarray:
        return total / 4 + wobble * rng.uniform(-wobble, wobble, total.shape)

    while step >= 2:
        half = step // 2
        corners = grid[0::step, 0::step]
        square = corners + np.roll(corners, -1, axis=0)
        square += np.roll(square, -1, axis=1)
        grid[half::step, half::step] = jitter(square)
        centres = grid[half::step, half::step]
        corners = grid[0::step, 0::step]
        top = (centres + np.roll(centres, 1, axis=0)) + (corners + np.roll(corners, -1, axis=1))
        grid[0::step, half::step] = jitter(top)
        left = (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=0))
        grid[half::step, 0::step] = jitter(left)
        step, wobble = half, wobble / decay
    grid -= grid.min()
    return grid / grid.max()


def bilinear_sample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, border: str) -> np.ndarray:
    """Sample an (H, W, C) image at float (row, col) positions; `border` is numpy's pad rule for
    the neighbours outside it: `symmetric` (scipy's reflect) or `reflect` (OpenCV's REFLECT_101)."""
    h, w = image.shape[:2]

    def fold(i: np.ndarray, n: int) -> np.ndarray:
        period = 2 * n if border == "symmetric" else 2 * n - 2
        i = np.mod(i, period)
        return np.where(i < n, i, period - i - (1 if border == "symmetric" else 0))

    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    r1, c1 = fold(r0 + 1, h), fold(c0 + 1, w)
    r0, c0 = fold(r0, h), fold(c0, w)
    top = image[r0, c0] * (1 - fc) + image[r0, c1] * fc
    bottom = image[r1, c0] * (1 - fc) + image[r1, c1] * fc
    return top * (1 - fr) + bottom * fr


def affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 affine map taking three (x, y) points onto three others (cv2.getAffineTransform)."""
    a = np.hstack([src.astype(np.float64), np.ones((3, 1))])
    return np.linalg.solve(a, dst.astype(np.float64)).T


# ----- the ten corruptions -----------------------------------------------------------------
def snow(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Level 5: flakes N(0.3, 0.3) zoomed x1.25, kept above 0.65, motion-blurred (radius 14,
    sigma 12, angle U(-135, -45)), added twice (once rotated 180 degrees) over an image lifted
    towards 1.5 x its grey level + 0.5 with weight 0.2."""
    img = x.astype(np.float32) / 255.0
    flakes = rng.normal(size=img.shape[:2], loc=0.3, scale=0.3)
    flakes = zoom_center(flakes, 1.25)
    flakes[flakes < 0.65] = 0
    flakes = (np.clip(flakes, 0, 1) * 255).astype(np.uint8)
    flakes = motion_blur(flakes, 14, 12, rng.uniform(-135, -45))[..., None] / 255.0
    grey = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    img = 0.8 * img + (1 - 0.8) * np.maximum(img, grey[..., None] * 1.5 + 0.5)
    return np.clip(img + flakes + np.rot90(flakes, k=2), 0, 1) * 255


def frost(x: np.ndarray, rng: np.random.RandomState, textures: tuple[np.ndarray, ...]) -> np.ndarray:
    """Level 5: 0.75 x image + 0.45 x a random 32 px crop of a frost photograph shrunk to 1/5.

    LfF draws the photograph with randint(5), so the sixth is never used; kept.
    """
    texture = textures[rng.randint(5)]
    top = rng.randint(0, texture.shape[0] - SIDE)
    left = rng.randint(0, texture.shape[1] - SIDE)
    return np.clip(0.75 * x + 0.45 * texture[top:top + SIDE, left:left + SIDE], 0, 255)


def fog(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Level 5: add 1.5 x a plasma fractal (decay 1.75), then rescale by max / (max + 1.5)."""
    img = x / 255.0
    peak = img.max()
    img = img + 1.5 * plasma_fractal(rng, SIDE, 1.75)[:SIDE, :SIDE, None]
    return np.clip(img * peak / (peak + 1.5), 0, 1) * 255


def brightness(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Level 5: HSV value + 0.3, clipped."""
    hsv = rgb_to_hsv(x / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + 0.3, 0, 1)
    return np.clip(hsv_to_rgb(hsv), 0, 1) * 255


def contrast(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Level 5 (index 4 of LfF's six-entry list): each channel's deviation from its mean x 0.15."""
    img = x / 255.0
    means = img.mean(axis=(0, 1), keepdims=True)
    return np.clip((img - means) * 0.15 + means, 0, 1) * 255


def spatter(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Level 5 ("mud" branch): blobs where N(0.65, 0.1) blurred by sigma 0.5 exceeds 0.68, blurred
    by sigma 0.6 and kept where >= 0.8, painted mud brown (63, 42, 20) with that opacity."""
    img = x.astype(np.float32) / 255.0
    liquid = gaussian_filter(rng.normal(size=img.shape[:2], loc=0.65, scale=0.1), 0.5)
    liquid[liquid < 0.68] = 0
    mask = gaussian_filter((liquid > 0.68).astype(np.float32), 0.6)
    mask[mask < 0.8] = 0
    mud = np.array([63, 42, 20], dtype=np.float64) / 255.0
    return np.clip(img * (1 - mask[..., None]) + mud * mask[..., None], 0, 1) * 255


def elastic(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Level 5 (32 x (0.1, 0.03, 0.03)): a random affine map moving three points by up to 0.96 px,
    then a smooth displacement field (uniform noise blurred by sigma 0.96, x 3.2 px)."""
    img = x.astype(np.float32) / 255.0
    centre, half = SIDE // 2, SIDE // 3
    points = np.float32([[centre + half, centre + half], [centre + half, centre - half], [centre - half, centre - half]])
    moved = points + rng.uniform(-0.96, 0.96, size=points.shape).astype(np.float32)
    inverse = affine_from_points(moved, points)  # output pixel -> where it comes from
    ys, xs = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    img = bilinear_sample(img, src_y, src_x, "reflect").astype(np.float32)
    dx = (gaussian_filter(rng.uniform(-1, 1, size=(SIDE, SIDE)), 0.96, "reflect", truncate=3) * 3.2).astype(np.float32)
    dy = (gaussian_filter(rng.uniform(-1, 1, size=(SIDE, SIDE)), 0.96, "reflect", truncate=3) * 3.2).astype(np.float32)
    return np.clip(bilinear_sample(img, ys + dy, xs + dx, "symmetric"), 0, 1) * 255


def jpeg(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Level 5: JPEG at quality 40 (PIL's encoder)."""
    buffer = io.BytesIO()
    Image.fromarray(x).save(buffer, "JPEG", quality=40)
    return np.asarray(Image.open(buffer))


def pixelate(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Level 5: box-downsample to int(32 x 0.65) = 20 px and box-upsample back."""
    small = int(SIDE * 0.65)
    return np.asarray(Image.fromarray(x).resize((small, small), Image.BOX).resize((SIDE, SIDE), Image.BOX))


def saturate(x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Level 5: HSV saturation x 2.5 + 0.2, clipped."""
    hsv = rgb_to_hsv(x / 255.0)
    hsv[..., 1] = np.clip(hsv[..., 1] * 2.5 + 0.2, 0, 1)
    return np.clip(hsv_to_rgb(hsv), 0, 1) * 255


FUNCTIONS = {"snow": snow, "fog": fog, "brightness": brightness, "contrast": contrast, "spatter": spatter,
             "elastic": elastic, "jpeg": jpeg, "pixelate": pixelate, "saturate": saturate}


# ----- frost textures ----------------------------------------------------------------------
def frost_folder(folder: str | Path | None) -> Path:
    """Where the frost photographs are: the given folder, else the installed `imagecorruptions`."""
    if folder:
        path = Path(folder).expanduser()
    else:
        spec = importlib.util.find_spec("imagecorruptions")
        if spec is None or not spec.submodule_search_locations:
            raise BenchError("cifar10c needs the frost photographs of Hendrycks & Dietterich: pip install -e .[cifar] "
                             "(installs imagecorruptions, which ships them), or --set cifar10c.frost_dir=FOLDER "
                             f"holding {', '.join(FROST_FILES[:5])}")
        path = Path(list(spec.submodule_search_locations)[0]) / "frost"
    missing = [f for f in FROST_FILES[:5] if not (path / f).exists()]
    if missing:
        raise BenchError(f"{path}: frost photograph(s) {', '.join(missing)} missing; reinstall imagecorruptions "
                         "(pip install -e .[cifar]) or point cifar10c.frost_dir at a folder holding them")
    return path


def shrink(image: np.ndarray, factor: float) -> np.ndarray:
    """Bilinear downscale of uint8 (H, W, 3) without antialiasing (OpenCV's INTER_LINEAR sample positions)."""
    h, w = image.shape[:2]
    out_h, out_w = int(round(h * factor)), int(round(w * factor))

    def positions(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = np.clip((np.arange(n_out) + 0.5) / factor - 0.5, 0, n_in - 1)
        lo = np.floor(s).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), s - lo

    r0, r1, fr = positions(out_h, h)
    c0, c1, fc = positions(out_w, w)
    img = image.astype(np.float64)
    rows = img[r0] * (1 - fr)[:, None, None] + img[r1] * fr[:, None, None]
    out = rows[:, c0] * (1 - fc)[None, :, None] + rows[:, c1] * fc[None, :, None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@lru_cache(maxsize=4)
def frost_textures(folder: Path) -> tuple[np.ndarray, ...]:
    """The five photographs LfF can draw, RGB, shrunk to 1/5 as LfF does before cropping."""
    return tuple(shrink(np.asarray(Image.open(folder / name).convert("RGB")), 0.2) for name in FROST_FILES[:5])


def corrupt(x: np.ndarray, corruption: int, rng: np.random.RandomState, textures: tuple[np.ndarray, ...] | None) -> np.ndarray:
    """Apply Type0 corruption `corruption` (0-9) to one uint8 (32, 32, 3) image; uint8 out, truncated as LfF stores it."""
    name = TYPE0[corruption]
    if name == "frost":
        if textures is None:
            raise BenchError("frost needs its photographs: see datasets/corruptions.frost_folder")
        out = frost(x, rng, textures)
    else:
        out = FUNCTIONS[name](x, rng)
    return np.asarray(out).astype(np.uint8)
