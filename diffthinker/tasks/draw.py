"""Drawing and pixel-reading helpers shared by the tasks: palette, bundled fonts, image validation, colour masks.

The palette is the published one (reference §4-§8): pure red answers, yellow start, blue end, light-gray grid.
Everything here is plain PIL + numpy.
"""

from __future__ import annotations

import io
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .base import TaskError

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
RED = (255, 0, 0)
YELLOW = (255, 255, 0)
BLUE = (0, 0, 255)
GRID_GRAY = (224, 224, 224)

#: Smallest and largest side we accept for an image to parse. Below 16 px no puzzle cell is readable; above
#: 8192 px it is almost certainly not a puzzle image (and decoding it would cost seconds and gigabytes).
MIN_SIDE = 16
MAX_SIDE = 8192

_MODES_CONVERTED = ("RGB", "RGBA", "LA", "L", "P", "PA")


@lru_cache(maxsize=None)
def font_path(name: str) -> Path:
    """Path of a bundled font ("Lato-Medium", "Lato-Bold"); see assets/fonts/LICENSE-Lato-OFL.txt."""
    ref = resources.files("diffthinker.tasks") / "assets" / "fonts" / f"{name}.ttf"
    path = Path(str(ref))
    if not path.is_file():
        raise TaskError(f"bundled font {name!r} not found at {path}")
    return path


@lru_cache(maxsize=64)
def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A bundled TrueType font at ``size`` px. Never falls back silently to PIL's default font."""
    return ImageFont.truetype(str(font_path(name)), size)


def to_rgb(image: Image.Image) -> Image.Image:
    """Validate an input image and return it as RGB.

    Accepted modes: RGB, and RGBA/LA/PA (composited over white), L and P (converted). Anything else (CMYK, 16-bit,
    float, 1-bit) or a side outside [MIN_SIDE, MAX_SIDE] raises TaskError naming the value.
    """
    if not isinstance(image, Image.Image):
        raise TaskError(f"expected a PIL.Image.Image, got {type(image).__name__}")
    w, h = image.size
    if min(w, h) < MIN_SIDE or max(w, h) > MAX_SIDE:
        raise TaskError(f"image size {w}x{h} is outside the accepted range: each side in [{MIN_SIDE}, {MAX_SIDE}] px")
    if image.mode not in _MODES_CONVERTED:
        raise TaskError(f"image mode {image.mode!r} is not supported; expected one of {list(_MODES_CONVERTED)}")
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | Path) -> Image.Image:
    """Open an image file fully (so truncation is found now, not later) and validate it; RGB out."""
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return to_rgb(img.copy() if img.mode == "RGB" else img)
    except TaskError as exc:
        raise TaskError(f"{path}: {exc}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise TaskError(f"{path} is not a readable image ({type(exc).__name__}: {exc})") from None


def rgb_array(image: Image.Image) -> np.ndarray:
    """H x W x 3 uint8 array of a validated image."""
    return np.asarray(to_rgb(image), dtype=np.uint8)


def resize(image: Image.Image, size: int | tuple[int, int], resample=Image.Resampling.BILINEAR) -> Image.Image:
    size = (size, size) if isinstance(size, int) else size
    return image if image.size == size else image.resize(size, resample)


def red_mask(rgb: np.ndarray) -> np.ndarray:
    """Where the answer ink is: strongly red pixels (the published rule R>100, R>1.2G, R>1.2B, tightened to
    tolerate JPEG chroma bleed on yellow/white)."""
    r = rgb[..., 0].astype(np.int16)
    g = rgb[..., 1].astype(np.int16)
    b = rgb[..., 2].astype(np.int16)
    return (r > 120) & (r - g > 60) & (r - b > 60)


def yellow_mask(rgb: np.ndarray) -> np.ndarray:
    r = rgb[..., 0].astype(np.int16)
    g = rgb[..., 1].astype(np.int16)
    b = rgb[..., 2].astype(np.int16)
    return (r > 150) & (g > 150) & (b < 110) & (np.abs(r - g) < 70)


def blue_mask(rgb: np.ndarray) -> np.ndarray:
    r = rgb[..., 0].astype(np.int16)
    g = rgb[..., 1].astype(np.int16)
    b = rgb[..., 2].astype(np.int16)
    return (b > 120) & (b - r > 70) & (b - g > 70)


def cell_means(mask: np.ndarray, rows: int, cols: int, margin: float = 0.0) -> np.ndarray:
    """Mean of ``mask`` inside each cell of a rows x cols grid laid over the whole image.

    ``margin`` is the fraction of the cell trimmed from each side before averaging (0.2 keeps the central 60%).
    Works for any image size (cell edges are rounded, every cell keeps at least one pixel).
    """
    h, w = mask.shape[:2]
    ys = np.linspace(0, h, rows + 1)
    xs = np.linspace(0, w, cols + 1)
    out = np.zeros((rows, cols), dtype=np.float64)
    m = mask.astype(np.float64)
    # An integral image makes every cell an O(1) lookup.
    integral = np.pad(m.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    for r in range(rows):
        y0, y1 = ys[r], ys[r + 1]
        dy = (y1 - y0) * margin
        a, b = int(round(y0 + dy)), int(round(y1 - dy))
        b = max(b, a + 1)
        for c in range(cols):
            x0, x1 = xs[c], xs[c + 1]
            dx = (x1 - x0) * margin
            p, q = int(round(x0 + dx)), int(round(x1 - dx))
            q = max(q, p + 1)
            total = integral[b, q] - integral[a, q] - integral[b, p] + integral[a, p]
            out[r, c] = total / ((b - a) * (q - p))
    return out


def polyline(draw: ImageDraw.ImageDraw, points, fill, width: int) -> None:
    """PIL's polyline with rounded joints, as the published renderers draw answers (``joint="curve"``)."""
    pts = [tuple(p) for p in points]
    if len(pts) >= 2:
        draw.line(pts, fill=fill, width=width, joint="curve")


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
