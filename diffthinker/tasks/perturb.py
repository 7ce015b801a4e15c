"""Seeded image perturbations of what a diffusion model's output looks like: resizing, JPEG, noise, blur.

Used by the parser property tests, the benchmarks and (optionally) training-time augmentation. Every random
choice takes a seed, so a failing perturbation can be replayed exactly.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def jpeg(image: Image.Image, quality: int = 75) -> Image.Image:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def gaussian_noise(image: Image.Image, sigma: float = 8.0, seed: int = 0) -> Image.Image:
    """Additive Gaussian noise with standard deviation ``sigma`` on the 0..255 scale, clipped."""
    rng = np.random.default_rng(seed)
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    arr = arr + rng.normal(0.0, sigma, size=arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def blur(image: Image.Image, radius: float = 1.0) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def rescale(image: Image.Image, size: int, resample=Image.Resampling.BILINEAR) -> Image.Image:
    return image.resize((size, size), resample)


def model_like(image: Image.Image, seed: int = 0, *, size: int | None = None, quality: int | None = 75,
               sigma: float = 8.0, blur_radius: float = 0.6) -> Image.Image:
    """The combination the parsers must survive: optional rescale, slight blur, noise sigma 8, JPEG q75."""
    out = image.convert("RGB")
    if size is not None and size != out.size[0]:
        out = rescale(out, size)
    if blur_radius:
        out = blur(out, blur_radius)
    if sigma:
        out = gaussian_noise(out, sigma, seed)
    if quality is not None:
        out = jpeg(out, quality)
    return out
