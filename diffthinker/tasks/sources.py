"""Source pictures for the jigsaw task: seeded procedural pictures, user image folders, official problem images.

The published jigsaw generator cuts COCO photos; no dataset can be downloaded here, so our own levels cut
*procedural* pictures instead: seeded, resolution-independent compositions (landscapes, shape collages, marbled
textures, stained-glass mosaics, wave bands) with smooth gradients, hard-edged shapes and fine texture, built so
that every block of a 4x4 cut looks different. Users can also point the task at folders of their own images.

A source is named by a **spec string**, stored in the jigsaw instance (so instances stay small, hashable and
JSON-serialisable):

- ``procedural:<seed>``           a procedural picture; the kind is drawn from the seed;
- ``procedural:<kind>:<seed>``    the same with the kind forced (one of ``PROCEDURAL_KINDS``);
- ``file:<path>|sha256=<hex>``    a user image, resized to the block area (bicubic, as the published generator);
- ``official-problem:<path>|sha256=<hex>``  an official (already shuffled and labelled) jigsaw problem PNG;
- ``vispuzzle:<path>|sha256=<hex>``         a VisPuzzle benchmark problem image.

``<path>`` is absolute, or relative to one of the roots registered with :func:`add_source_root` (the data layer
registers each dataset folder). The sha256 of the file's bytes is checked on every (uncached) load, so a missing
or changed file raises ``TaskError`` instead of silently producing a different puzzle. Which picture a
``file:`` spec gives, and how the jigsaw task cuts the ``official-problem:`` / ``vispuzzle:`` kinds, is the
jigsaw task's business; this module only resolves, verifies and loads.

Procedural pictures are functions of continuous coordinates: ``procedural_picture(seed, w, h)`` evaluates the
same picture at any resolution (below 256 px it is evaluated at a higher resolution and box-filtered, so small
renders are anti-aliased rather than aliased). Everything is numpy + PIL; noise octaves are bicubic upsamplings of
seeded random lattices (PIL "F" images), which is both fast and resolution-independent.
"""

from __future__ import annotations

import colorsys
import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .base import TaskError
from .draw import load_image

__all__ = [
    "FILE_KINDS",
    "IMAGE_EXTENSIONS",
    "PROCEDURAL_KINDS",
    "SourceSpec",
    "add_source_root",
    "clear_source_roots",
    "file_spec",
    "folder_specs",
    "load_file_image",
    "parse_spec",
    "picture_kind",
    "procedural_picture",
    "procedural_spec",
    "remove_source_root",
    "resolve_path",
    "source_picture",
    "source_roots",
]

PROCEDURAL_KINDS = ("landscape", "shapes", "marble", "mosaic", "waves")
#: Spec kinds that name a file (with a sha256); "file" is a source picture, the other two are puzzle images.
FILE_KINDS = ("file", "official-problem", "vispuzzle")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")  # the published generator's list

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_ROOTS: list[Path] = []


# ------------------------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class SourceSpec:
    """A parsed spec: ``kind`` plus either ``seed``/``procedural_kind`` or ``path``/``sha256``."""

    kind: str
    seed: int | None = None
    procedural_kind: str | None = None
    path: str | None = None
    sha256: str | None = None

    def __str__(self) -> str:
        if self.kind == "procedural":
            return (f"procedural:{self.procedural_kind}:{self.seed}" if self.procedural_kind
                    else f"procedural:{self.seed}")
        return f"{self.kind}:{self.path}|sha256={self.sha256}"


@lru_cache(maxsize=4096)
def parse_spec(spec: str) -> SourceSpec:
    """Parse and validate a source spec string (see the module docstring); TaskError naming what is wrong."""
    if not isinstance(spec, str) or ":" not in spec:
        raise TaskError(f"source spec {spec!r} is not of the form '<kind>:<body>'; expected one of "
                        f"'procedural:<seed>', 'procedural:<kind>:<seed>', or "
                        f"'<{'|'.join(FILE_KINDS)}>:<path>|sha256=<hex>'")
    kind, body = spec.split(":", 1)
    if kind == "procedural":
        parts = body.split(":")
        pkind = None
        if len(parts) == 2:
            pkind, parts = parts[0], parts[1:]
            if pkind not in PROCEDURAL_KINDS:
                raise TaskError(f"source spec {spec!r}: unknown procedural kind {pkind!r}; "
                                f"expected one of {list(PROCEDURAL_KINDS)}")
        if len(parts) != 1 or not parts[0].isdigit():
            raise TaskError(f"source spec {spec!r}: expected 'procedural:<seed>' or 'procedural:<kind>:<seed>' with "
                            f"a non-negative integer seed")
        return SourceSpec("procedural", seed=int(parts[0]), procedural_kind=pkind)
    if kind in FILE_KINDS:
        path, sep, sha = body.rpartition("|sha256=")
        if not sep or not path:
            raise TaskError(f"source spec {spec!r}: expected '{kind}:<path>|sha256=<64 hex digits>' "
                            f"(build one with sources.file_spec(path))")
        if not _SHA_RE.match(sha):
            raise TaskError(f"source spec {spec!r}: sha256 {sha!r} is not 64 lowercase hex digits")
        return SourceSpec(kind, path=path, sha256=sha)
    raise TaskError(f"source spec {spec!r}: unknown kind {kind!r}; expected 'procedural' or one of {list(FILE_KINDS)}")


def procedural_spec(seed: int, kind: str | None = None) -> str:
    """``procedural:<seed>`` (kind drawn from the seed) or ``procedural:<kind>:<seed>``."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise TaskError(f"procedural source seed must be a non-negative int, got {seed!r}")
    return str(parse_spec(f"procedural:{kind}:{seed}" if kind else f"procedural:{seed}"))


# ------------------------------------------------------------------------------------------------ roots and files
def add_source_root(path: str | os.PathLike) -> Path:
    """Register a folder that relative paths in file specs are resolved against (first registered wins)."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise TaskError(f"source root {str(path)!r} is not an existing directory")
    if root not in _ROOTS:
        _ROOTS.append(root)
    return root


def remove_source_root(path: str | os.PathLike) -> None:
    root = Path(path).expanduser().resolve()
    if root in _ROOTS:
        _ROOTS.remove(root)


def clear_source_roots() -> None:
    _ROOTS.clear()


def source_roots() -> tuple[Path, ...]:
    return tuple(_ROOTS)


def resolve_path(path: str) -> Path:
    """An absolute path as is; a relative one against the registered roots, in registration order."""
    p = Path(path)
    if p.is_absolute():
        if not p.is_file():
            raise TaskError(f"source file {path!r} not found")
        return p
    for root in _ROOTS:
        candidate = root / p
        if candidate.is_file():
            return candidate
    raise TaskError(f"source file {path!r} not found under the registered source roots "
                    f"{[str(r) for r in _ROOTS]} (register its dataset folder with add_source_root)")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_spec(path: str | os.PathLike, kind: str = "file") -> str:
    """The spec of an existing image file, with its sha256. The path is written relative to the first registered
    root that contains the file, else absolute, so datasets under a registered root stay relocatable."""
    if kind not in FILE_KINDS:
        raise TaskError(f"file spec kind {kind!r} unknown; expected one of {list(FILE_KINDS)}")
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise TaskError(f"source file {str(path)!r} not found")
    text = p.as_posix()
    for root in _ROOTS:
        try:
            text = p.relative_to(root).as_posix()
            break
        except ValueError:
            continue
    return f"{kind}:{text}|sha256={_sha256_file(p)}"


def folder_specs(folder: str | os.PathLike, max_aspect: float | None = 1.35) -> list[str]:
    """``file:`` specs of the images in a folder (recursively, sorted by path), for user datasets.

    Like the published generator, pictures whose aspect ratio max/min exceeds ``max_aspect`` are dropped (they
    would be badly distorted by the square resize); pass ``None`` to keep every image. Unreadable files raise.
    """
    root = Path(folder)
    if not root.is_dir():
        raise TaskError(f"image folder {str(folder)!r} is not an existing directory")
    specs = []
    for p in sorted(q for q in root.rglob("*") if q.suffix.lower() in IMAGE_EXTENSIONS and q.is_file()):
        if max_aspect is not None:
            try:
                with Image.open(p) as im:
                    w, h = im.size
            except (OSError, SyntaxError, ValueError) as exc:
                raise TaskError(f"{p} is not a readable image ({exc})") from None
            if min(w, h) == 0 or max(w, h) / min(w, h) > max_aspect:
                continue
        specs.append(file_spec(p))
    return specs


@lru_cache(maxsize=8)   # VisPuzzle photos reach 2220x1670: keep few decoded
def _load_verified(path: str, sha256: str, mtime_ns: int, size: int) -> Image.Image:
    # Keyed on mtime and size too, so an edited file is re-hashed (and rejected) rather than served from cache.
    actual = _sha256_file(Path(path))
    if actual != sha256:
        raise TaskError(f"source file {path} changed: its sha256 is {actual}, the spec expects {sha256}")
    return load_image(path)


def load_file_image(spec: str | SourceSpec) -> Image.Image:
    """The verified RGB image a file-kind spec names (a cached object: copy before drawing on it)."""
    s = parse_spec(spec) if isinstance(spec, str) else spec
    if s.kind not in FILE_KINDS:
        raise TaskError(f"source spec {str(s)!r} does not name a file")
    p = resolve_path(s.path)
    st = p.stat()
    return _load_verified(str(p), s.sha256, st.st_mtime_ns, st.st_size)


def source_picture(spec: str, width: int, height: int) -> Image.Image:
    """The source picture of a ``procedural:`` or ``file:`` spec at width x height (a cached object: copy before
    drawing on it). File pictures are resized bicubic, exactly as the published generator resizes COCO photos."""
    s = parse_spec(spec)
    if s.kind == "procedural":
        return procedural_picture(s.seed, width, height, s.procedural_kind)
    if s.kind == "file":
        img = load_file_image(s)
        return img if img.size == (width, height) else img.resize((width, height), Image.Resampling.BICUBIC)
    raise TaskError(f"source spec {spec!r} is a {s.kind!r} puzzle image, not a source picture")


# ------------------------------------------------------------------------------------------------ procedural
def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)), dtype=np.float32)


def _palette(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """n colours around a random base hue with varied saturation and value (analogous + one complementary)."""
    base = rng.random()
    cols = []
    for i in range(n):
        hue = base + (0.5 if i == n - 1 else rng.uniform(-0.18, 0.18))
        cols.append(_hsv(hue, rng.uniform(0.35, 0.95), rng.uniform(0.3, 1.0)))
    return cols


class _Canvas:
    """Pixel-centre coordinates u (x) and v (y) in [0, 1] and a noise generator, for one evaluation size."""

    def __init__(self, w: int, h: int, seed: int):
        self.w, self.h = w, h
        self.u = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]
        self.v = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
        self.rng = np.random.default_rng(seed)

    def noise(self, cells: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Smooth value noise in ~[0, 1] with ``cells`` lattice cells per side (bicubic lattice upsampling)."""
        lattice = (rng or self.rng).random((cells, cells), dtype=np.float32)
        return np.asarray(Image.fromarray(lattice, "F").resize((self.w, self.h), Image.Resampling.BICUBIC))

    def fbm(self, base: int, octaves: int, gain: float = 0.5) -> np.ndarray:
        out = np.zeros((self.h, self.w), np.float32)
        amp, total = 1.0, 0.0
        for o in range(octaves):
            out += amp * self.noise(base * 2 ** o)
            total += amp
            amp *= gain
        return out / total

    def noise1d(self, cells: int) -> np.ndarray:
        """Smooth 1-D noise along u, shape (1, w)."""
        lattice = self.rng.random((1, cells), dtype=np.float32)
        return np.asarray(Image.fromarray(lattice, "F").resize((self.w, 1), Image.Resampling.BICUBIC))

    def aa(self, sdf: np.ndarray) -> np.ndarray:
        """Anti-aliased coverage of the region sdf < 0 (sdf in u units; one pixel of soft edge)."""
        return np.clip(0.5 - sdf * max(self.w, self.h), 0.0, 1.0)


def _mix(img: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    img += (colour - img) * alpha[..., None]


def _shapes(cv: _Canvas, img: np.ndarray, rng: np.random.Generator, count: int, palette: list[np.ndarray],
            vmin: float = 0.0) -> None:
    """Composite ``count`` anti-aliased shapes (discs, rings, rotated boxes, triangles, striped discs)."""
    u, v = cv.u, cv.v
    for _ in range(count):
        kind = rng.integers(0, 5)
        cx, cy = rng.uniform(0.0, 1.0), rng.uniform(vmin, 1.0)
        r = rng.uniform(0.04, 0.16)
        colour = palette[rng.integers(0, len(palette))] * rng.uniform(0.7, 1.15)
        # Work only inside the shape's bounding box: keeps 20 shapes at 512 px cheap.
        x0, x1 = max(0, int((cx - r * 1.5) * cv.w) - 2), min(cv.w, int((cx + r * 1.5) * cv.w) + 3)
        y0, y1 = max(0, int((cy - r * 1.5) * cv.h) - 2), min(cv.h, int((cy + r * 1.5) * cv.h) + 3)
        if x1 <= x0 or y1 <= y0:
            continue
        du, dv = u[:, x0:x1] - cx, v[y0:y1, :] - cy
        if kind == 0:                                    # disc with radial shading
            d = np.sqrt(du * du + dv * dv)
            sdf = d - r
            shade = 1.0 - 0.35 * np.clip(d / r, 0, 1)
            cov = cv.aa(sdf)
            _mix(img[y0:y1, x0:x1], colour, cov * 0.95)
            img[y0:y1, x0:x1] *= (1.0 - cov * (1.0 - shade))[..., None]
        elif kind == 1:                                  # ring
            d = np.sqrt(du * du + dv * dv)
            sdf = np.abs(d - r * 0.75) - r * 0.22
            _mix(img[y0:y1, x0:x1], colour, cv.aa(sdf))
        elif kind == 2:                                  # rotated rectangle
            a = rng.uniform(0, np.pi)
            ca, sa = np.cos(a), np.sin(a)
            x, y = du * ca + dv * sa, -du * sa + dv * ca
            hw, hh = r, r * rng.uniform(0.3, 0.9)
            sdf = np.maximum(np.abs(x) - hw, np.abs(y) - hh)
            _mix(img[y0:y1, x0:x1], colour, cv.aa(sdf))
        elif kind == 3:                                  # triangle (intersection of three half-planes)
            a0 = rng.uniform(0, 2 * np.pi)
            sdf = None
            for k in range(3):
                a = a0 + k * 2 * np.pi / 3
                plane = du * np.cos(a) + dv * np.sin(a) - r * 0.5
                sdf = plane if sdf is None else np.maximum(sdf, plane)
            _mix(img[y0:y1, x0:x1], colour, cv.aa(sdf))
        else:                                            # disc filled with stripes of two colours
            d = np.sqrt(du * du + dv * dv)
            a = rng.uniform(0, np.pi)
            freq = rng.uniform(20, 45)
            stripes = (np.sin((du * np.cos(a) + dv * np.sin(a)) * freq * 2 * np.pi) > 0).astype(np.float32)
            other = palette[rng.integers(0, len(palette))]
            fill = colour + (other - colour) * stripes[..., None]
            cov = cv.aa(d - r)[..., None]
            img[y0:y1, x0:x1] += (fill - img[y0:y1, x0:x1]) * cov


def _landscape(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    u, v = cv.u, cv.v
    top, horizon = _hsv(rng.uniform(0.5, 0.7), rng.uniform(0.4, 0.9), rng.uniform(0.5, 0.95)), \
        _hsv(rng.uniform(0.0, 0.16), rng.uniform(0.2, 0.7), rng.uniform(0.8, 1.0))
    horizon_v = rng.uniform(0.45, 0.65)
    t = np.clip(v / horizon_v, 0, 1)[..., None]
    img = np.broadcast_to(top + (horizon - top) * t, (cv.h, cv.w, 3)).astype(np.float32).copy()
    # sun with a glow
    sx, sy, sr = rng.uniform(0.15, 0.85), rng.uniform(0.1, horizon_v - 0.15), rng.uniform(0.04, 0.08)
    d = np.sqrt((u - sx) ** 2 + (v - sy) ** 2)
    sun = _hsv(rng.uniform(0.08, 0.16), rng.uniform(0.2, 0.6), 1.0)
    _mix(img, sun, np.exp(-((d / (sr * 3)) ** 2)) * 0.5)
    _mix(img, sun, cv.aa(d - sr))
    # clouds: thresholded fbm, only in the sky
    clouds = np.clip((cv.fbm(4, 4) - 0.55) * 4, 0, 1) * np.clip((horizon_v - v) / horizon_v * 2, 0, 1)
    _mix(img, np.array([1, 1, 1], np.float32) * rng.uniform(0.85, 1.0), clouds * 0.8)
    # mountain ranges, far to near: darker, more saturated, one shared rock texture; only the rows a range can
    # cover are touched (full-frame float passes dominate the cost at 512 px)
    base_hue = rng.uniform(0.2, 0.8)
    layers = int(rng.integers(2, 4))
    rock = (cv.fbm(8, 3) - 0.5) * 0.25
    for k in range(layers):
        ridge = (horizon_v - rng.uniform(0.12, 0.3) * (1 - k / layers)
                 + (cv.noise1d(int(rng.integers(4, 9))) - 0.5) * 0.25)
        ridge = ridge + (cv.noise1d(24) - 0.5) * 0.03      # small crags
        y0 = min(cv.h - 1, max(0, int(ridge.min() * cv.h) - 2))
        vv, part = v[y0:], img[y0:]
        cov = cv.aa(ridge - vv)
        col = _hsv(base_hue + k * 0.05, 0.3 + 0.2 * k, 0.75 - 0.2 * k)
        shade = (1.0 - 0.5 * np.clip(vv - ridge, 0, 1))[..., None]
        part += ((col * shade + rock[y0:, :, None]) - part) * cov[..., None]
    # ground with a meadow texture darkening towards the viewer, and a few trees
    ground_v = rng.uniform(0.7, 0.85)
    gline = ground_v + (cv.noise1d(6) - 0.5) * 0.05
    y0 = min(cv.h - 1, max(0, int(gline.min() * cv.h) - 2))
    vv, part = v[y0:], img[y0:]
    gcov = cv.aa(gline - vv)
    gcol = _hsv(rng.uniform(0.18, 0.35), rng.uniform(0.4, 0.8), rng.uniform(0.35, 0.7))
    gtex = (cv.fbm(16, 3)[y0:] - 0.5)[..., None] * 0.3 + (vv - ground_v)[..., None] * 0.4
    part += ((gcol + gtex) - part) * gcov[..., None]
    trunk = _hsv(0.08, 0.6, 0.3)
    leaf = _hsv(rng.uniform(0.22, 0.4), 0.7, 0.35)
    for _ in range(int(rng.integers(3, 8))):
        tx, ty, th = rng.uniform(0.02, 0.98), rng.uniform(ground_v, 0.97), rng.uniform(0.08, 0.18)
        leaf_col = leaf * rng.uniform(0.8, 1.2)
        x0, x1 = max(0, int((tx - th * 0.4) * cv.w) - 2), min(cv.w, int((tx + th * 0.4) * cv.w) + 3)
        y0, y1 = max(0, int((ty - th) * cv.h) - 2), min(cv.h, int(ty * cv.h) + 3)
        if x1 <= x0 or y1 <= y0:
            continue
        dx, dy = u[:, x0:x1] - tx, v[y0:y1, :] - ty
        # crown: a triangle from the apex (ty - th) down to 0.25 th above the ground point; trunk below it
        crown = np.maximum(np.abs(dx) - (dy + th) * 0.35, np.maximum(-(dy + th), dy + th * 0.25))
        part = img[y0:y1, x0:x1]
        _mix(part, trunk, cv.aa(np.maximum(np.abs(dx) - 0.008, np.maximum(-(dy + th * 0.3), dy))))
        _mix(part, leaf_col, cv.aa(crown))
    return img


def _shapes_kind(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    pal = _palette(rng, 5)
    c00, c01, c10, c11 = (_hsv(rng.random(), rng.uniform(0.2, 0.6), rng.uniform(0.5, 1.0)) for _ in range(4))
    u, v = cv.u[..., None], cv.v[..., None]
    img = (c00 * (1 - u) * (1 - v) + c01 * u * (1 - v) + c10 * (1 - u) * v + c11 * u * v).astype(np.float32)
    img += (cv.fbm(6, 4) - 0.5)[..., None] * 0.2
    _shapes(cv, img, rng, int(rng.integers(14, 26)), pal)
    return img


def _marble(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    pal = _palette(rng, 4)
    fx, fy = rng.uniform(1.5, 4.0), rng.uniform(-2.0, 2.0)
    turb = cv.fbm(3, 5, gain=0.55)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * (cv.u * fx + cv.v * fy + rng.uniform(2.0, 4.0) * turb))
    # piecewise-linear colour map through the palette
    stops = np.linspace(0, 1, len(pal))
    img = np.zeros((cv.h, cv.w, 3), np.float32)
    for c in range(3):
        img[..., c] = np.interp(t, stops, [p[c] for p in pal])
    veins = np.clip(1 - np.abs(t - 0.5) * 25, 0, 1)
    img *= (1 - 0.5 * veins)[..., None]
    d = np.sqrt((cv.u - 0.5) ** 2 + (cv.v - 0.5) ** 2)
    img *= (1.1 - 0.5 * d)[..., None]
    _shapes(cv, img, rng, int(rng.integers(3, 7)), pal)
    return img


def _mosaic(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    pal = _palette(rng, 6)
    m = int(rng.integers(4, 8))
    jitter = rng.uniform(0.1, 0.9, size=(m + 2, m + 2, 2)).astype(np.float32)
    colours = np.stack([pal[i] * rng.uniform(0.6, 1.2) for i in rng.integers(0, len(pal), size=(m + 2) * (m + 2))])
    colours = colours.reshape(m + 2, m + 2, 3).astype(np.float32)
    gu, gv = cv.u * m, cv.v * m                       # grid units, (1, w) and (h, 1)
    iu, iv = np.floor(gu).astype(np.intp), np.floor(gv).astype(np.intp)
    fu, fv = gu - iu, gv - iv                         # position inside the cell, float32
    ju, jv = jitter[..., 0].ravel(), jitter[..., 1].ravel()
    # Nearest and second-nearest of the 9 jittered neighbour points (Worley noise), as running minima.
    best = np.full((cv.h, cv.w), np.inf, np.float32)
    second = np.full((cv.h, cv.w), np.inf, np.float32)
    nearest = np.zeros((cv.h, cv.w), np.int8)
    k = 0
    for dj in (-1, 0, 1):
        for di in (-1, 0, 1):
            flat = (iv + dj + 1) * (m + 2) + (iu + di + 1)
            d = np.sqrt((di + ju[flat] - fu) ** 2 + (dj + jv[flat] - fv) ** 2)
            np.minimum(second, np.maximum(best, d), out=second)
            closer = d < best
            nearest[closer] = k
            np.minimum(best, d, out=best)
            k += 1
    idx_u = iu + (nearest % 3) - 1
    idx_v = iv + (nearest // 3) - 1
    img = colours[idx_v + 1, idx_u + 1].copy()
    img *= (1.1 - 0.45 * best)[..., None]             # each tile shaded towards its edge
    edge = np.clip(1 - (second - best) * max(cv.w, cv.h) / m / 3.0, 0, 1)  # ~3 px lead lines at 512
    img *= (1 - 0.85 * edge)[..., None]
    img += (cv.fbm(24, 2) - 0.5)[..., None] * 0.12    # glass texture
    return img


def _waves(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    pal = _palette(rng, 5)
    y = cv.v + sum(rng.uniform(0.01, 0.05) * np.sin(2 * np.pi * (rng.uniform(1, 4) * cv.u + rng.random()))
                   for _ in range(3))
    y = y + (cv.fbm(5, 3) - 0.5) * 0.1
    nb = int(rng.integers(5, 10))
    band = np.clip(np.floor(y * nb).astype(np.int32), -1, nb)
    colours = np.stack([pal[i % len(pal)] * rng.uniform(0.7, 1.2) for i in range(nb + 2)]).astype(np.float32)
    img = colours[band + 1].copy()
    frac = (y * nb - np.floor(y * nb))[..., None]
    img *= 0.75 + 0.35 * frac                          # gradient inside each band
    img += (cv.fbm(32, 2) - 0.5)[..., None] * 0.1
    _shapes(cv, img, rng, int(rng.integers(6, 12)), pal)
    return img


_KIND_FUNCS = {"landscape": _landscape, "shapes": _shapes_kind, "marble": _marble, "mosaic": _mosaic,
               "waves": _waves}


def _master_rng(seed: int) -> np.random.Generator:
    """Every random choice of procedural picture ``seed`` descends from this generator."""
    return np.random.default_rng([seed, 0x5EED])


def _draw_kind(master: np.random.Generator) -> str:
    """The kind an unnamed procedural picture takes: the first draw of its master generator."""
    return PROCEDURAL_KINDS[int(master.integers(0, len(PROCEDURAL_KINDS)))]


def picture_kind(spec: str) -> str:
    """What a source spec draws: its procedural kind (the seed's draw when the spec names none) or its file kind.
    For breaking evaluation results down by picture (benchmarks/eval_breakdown.py); renders nothing."""
    parsed = parse_spec(spec)
    if parsed.kind != "procedural":
        return parsed.kind
    return parsed.procedural_kind or _draw_kind(_master_rng(parsed.seed))


@lru_cache(maxsize=16)
def procedural_picture(seed: int, width: int, height: int, kind: str | None = None) -> Image.Image:
    """The procedural picture of ``seed`` at width x height (RGB; a cached object: copy before drawing on it).

    Deterministic in (seed, kind): every random choice comes from ``numpy.random.default_rng`` seeded with the seed,
    and the picture is a function of continuous coordinates, so sizes differ only in sampling. The kind is
    ``PROCEDURAL_KINDS[seed-derived]`` unless given. A global two-colour ramp over u and v is added to every kind
    so that no two blocks of a cut share the same mean colour, and a fine fbm texture gives every block detail.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise TaskError(f"procedural seed must be a non-negative int, got {seed!r}")
    if not (isinstance(width, int) and isinstance(height, int) and 1 <= width <= 8192 and 1 <= height <= 8192):
        raise TaskError(f"procedural picture size {width}x{height} must be ints in [1, 8192]")
    master = _master_rng(seed)
    if kind is None:
        kind = _draw_kind(master)
    elif kind not in PROCEDURAL_KINDS:
        raise TaskError(f"unknown procedural kind {kind!r}; expected one of {list(PROCEDURAL_KINDS)}")
    # Small renders are evaluated larger and box-filtered: high-frequency texture must not alias.
    ss = 1 if min(width, height) >= 256 else min(4, -(-256 // min(width, height)))
    cv = _Canvas(width * ss, height * ss, int(master.integers(0, 2 ** 63)))
    rng = np.random.default_rng(int(master.integers(0, 2 ** 63)))
    img = _KIND_FUNCS[kind](cv, rng)
    ramp_u, ramp_v = _hsv(rng.random(), 1.0, 1.0) - 0.5, _hsv(rng.random(), 1.0, 1.0) - 0.5
    img = img + (cv.u[..., None] - 0.5) * ramp_u * 0.35 + (cv.v[..., None] - 0.5) * ramp_v * 0.35
    img = img + (cv.fbm(48, 2) - 0.5)[..., None] * 0.06
    out = Image.fromarray(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")
    if ss > 1:
        out = out.resize((width, height), Image.Resampling.BOX)
    return out
