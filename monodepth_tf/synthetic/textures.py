"""Tiling, mip-mapped textures of every surface material (value noise, bricks, slabs, stripes,
windows), drawn from a seed, and their trilinear lookup."""

import dataclasses
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

from monodepth_tf.synthetic.street import (BRICK_GROUND, BRICK_UPPER, CABIN, CONCRETE,
                                           EDGE_LINE_X, KERB_X, METAL, PAINT, PAVING,
                                           PLASTER_GROUND, PLASTER_UPPER, ROAD, SKY)


@dataclasses.dataclass
class Texture:
    """A seamlessly tiling texture's box-filtered pyramid, packed in one atlas image.

    Level ``l`` (``h / 2^l`` x ``w / 2^l`` texels) sits at ``offsets[l]`` (x, y) of ``atlas``
    with one extra column and row repeating its first ones, so a bilinear lookup at wrapped
    coordinates never leaves it.

    Attributes:
        atlas: ``[A, B, C]`` float32; C = 3 (RGB albedo) or 4 (RGB and the weight of the
            owner's tint).
        offsets: ``[L, 2]`` float32 (x, y) of each level in the atlas.
        sizes: ``[L, 2]`` float32 (width, height) of each level in texels.
        texel: metres per texel at level 0 (along both axes).
    """

    atlas: np.ndarray
    offsets: np.ndarray
    sizes: np.ndarray
    texel: float

    @property
    def channels(self) -> int:
        return self.atlas.shape[2]


def make_texture(image: np.ndarray, texel: float) -> Texture:
    """The Texture of a tiling ``[h, w, C]`` image whose sides are powers of two: level 0 on
    the left of the atlas, the smaller levels stacked to its right."""
    levels = [image.astype(np.float32)]
    while min(levels[-1].shape[:2]) > 1:
        h, w, c = levels[-1].shape
        levels.append(levels[-1].reshape(h // 2, 2, w // 2, 2, c).mean(axis=(1, 3)))
    h, w, c = levels[0].shape
    offsets = [(0, 0)] + [(w + 1, sum(l.shape[0] + 1 for l in levels[1:k]))
                          for k in range(1, len(levels))]
    height = max(h + 1, offsets[-1][1] + levels[-1].shape[0] + 1)
    atlas = np.zeros((height, w + 1 + levels[1].shape[1] + 1, c), np.float32)
    for (x, y), level in zip(offsets, levels):
        padded = np.concatenate([level, level[:1]], axis=0)
        padded = np.concatenate([padded, padded[:, :1]], axis=1)
        atlas[y:y + padded.shape[0], x:x + padded.shape[1]] = padded
    sizes = [(level.shape[1], level.shape[0]) for level in levels]
    return Texture(atlas, np.array(offsets, np.float32), np.array(sizes, np.float32), texel)


def periodic_noise(rng: np.random.Generator, height: int, width: int,
                   size: float) -> np.ndarray:
    """``[height, width]`` tiling Gaussian noise (zero mean, unit std) with features of about
    ``size`` texels."""
    spectrum = np.fft.rfft2(rng.standard_normal((height, width)))
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    spectrum *= np.exp(-2.0 * (np.pi * size) ** 2 * (fx ** 2 + fy ** 2) / 4.0)
    noise = np.fft.irfft2(spectrum, s=(height, width))
    return (noise - noise.mean()) / (noise.std() + 1e-12)


def fractal_noise(rng: np.random.Generator, height: int, width: int,
                  sizes: Sequence[float] = (32, 8, 2)) -> np.ndarray:
    """Sum of noise octaves (coarse ones strongest), roughly unit std."""
    total = sum(periodic_noise(rng, height, width, s) / (k + 1) for k, s in enumerate(sizes))
    return total / np.sqrt(sum(1 / (k + 1) ** 2 for k in range(len(sizes))))


def _grid(height: int, width: int, texel: float) -> Tuple[np.ndarray, np.ndarray]:
    """Texel-centre coordinates in metres: ``a [1, width]`` across, ``b [height, 1]`` up."""
    return ((np.arange(width) + 0.5) * texel)[None, :], ((np.arange(height) + 0.5) * texel)[:, None]


def _mix(mask: np.ndarray, inside, outside) -> np.ndarray:
    return np.where(mask[..., None], inside, outside)


def road_texture(rng: np.random.Generator) -> Texture:
    """Asphalt across the whole road (a = x + 6 in [0, 12) m, b = z, 12 m period) with a
    dashed centre line and solid edge lines."""
    n, texel = 1024, 12.0 / 1024
    a, b = _grid(n, n, texel)
    grey = 0.33 + 0.05 * fractal_noise(rng, n, n, (96, 12, 1.5))
    grey += 0.035 * np.clip(periodic_noise(rng, n, n, 40) - 1.0, 0, None)  # patches
    centre = (np.abs(a - KERB_X) < 0.075) & ((b % 6.0) < 3.0)
    edges = np.abs(np.abs(a - KERB_X) - EDGE_LINE_X) < 0.1
    paint = 0.82 + 0.06 * periodic_noise(rng, n, n, 3)
    grey = np.where(centre | edges, paint, grey)
    return make_texture(grey[..., None] * np.array([0.97, 1.0, 1.04]), texel)


def paving_texture(rng: np.random.Generator) -> Texture:
    """Sidewalk slabs of 0.5 m with dark joints and per-slab shades (2 m period)."""
    n, texel = 256, 2.0 / 256
    a, b = _grid(n, n, texel)
    slab = rng.uniform(-0.06, 0.06, (4, 4))[(b // 0.5).astype(int) % 4, (a // 0.5).astype(int) % 4]
    joint = ((a % 0.5) < 0.015) | ((b % 0.5) < 0.015)
    grey = 0.62 + slab + 0.05 * fractal_noise(rng, n, n, (16, 4, 1))
    grey = np.where(joint, 0.35, grey)
    return make_texture(grey[..., None] * np.array([1.02, 1.0, 0.94]), texel)


def concrete_texture(rng: np.random.Generator) -> Texture:
    """Kerb stones and roofs: speckled concrete with joints every metre (2 m period)."""
    n, texel = 256, 2.0 / 256
    a, _ = _grid(n, n, texel)
    grey = 0.58 + 0.07 * fractal_noise(rng, n, n, (24, 5, 1))
    grey = np.where((a % 1.0) < 0.012, 0.3, grey)
    return make_texture(np.broadcast_to(grey[..., None], (n, n, 3)), texel)


def facade_texture(rng: np.random.Generator, brick: bool, ground: bool) -> Texture:
    """One storey of facade, 3 m high; upper storeys one 3 m bay with a window, ground floors a
    6 m pair of bays with a door and a shop window. Walls take the building's tint."""
    width_m = 6.0 if ground else 3.0
    h, w, texel = 256, 512 if ground else 256, 3.0 / 256
    a, b = _grid(h, w, texel)
    if brick:  # running bond, 0.375 x 0.15 m bricks, 1.5 cm mortar
        row = (b // 0.15).astype(int)
        shifted = a + 0.1875 * (row % 2)
        col = (shifted // 0.375).astype(int) % int(width_m / 0.375)
        shade = rng.uniform(0.75, 1.05, (20, 16))[row % 20, col]
        mortar = ((b % 0.15) < 0.015) | ((shifted % 0.375) < 0.015)
        wall = np.where(mortar, 0.0, shade * (0.85 + 0.06 * fractal_noise(rng, h, w, (6, 1.5))))
        wall_rgb = _mix(mortar, [0.72, 0.7, 0.66], np.stack([wall] * 3, -1))
        tint = np.where(mortar, 0.0, 1.0)
    else:  # plaster with a cornice at each floor line
        wall = 0.9 + 0.07 * fractal_noise(rng, h, w, (40, 8, 1.5))
        cornice = (b % 3.0) > 2.85
        wall_rgb = np.stack([np.where(cornice, 1.05, wall)] * 3, -1)
        tint = np.where(cornice, 0.5, 1.0)
    glass = 0.2 + 0.06 * fractal_noise(rng, h, w, (30, 6))
    glass_rgb = np.stack([glass * 0.9, glass, glass * 1.2], -1)
    frame_rgb = np.array([0.9, 0.9, 0.86])
    openings = [(3.2, 5.6, 0.5, 2.6), (1.0, 2.2, 0.0, 2.3)] if ground else [(0.8, 2.2, 0.9, 2.4)]
    rgb, weight = wall_rgb, tint
    for index, (a0, a1, b0, b1) in enumerate(openings):
        outer = (a > a0 - 0.06) & (a < a1 + 0.06) & (b > b0 - 0.06) & (b < b1 + 0.06)
        inner = (a > a0) & (a < a1) & (b > b0) & (b < b1)
        door = ground and index == 1
        fill = np.stack([0.35 + 0.04 * np.sin(a * 60.0)] * 3, -1) * [1.0, 0.7, 0.45] \
            if door else glass_rgb
        if not door:  # mullions
            inner &= np.abs(a - (a0 + a1) / 2) > 0.03
        rgb = _mix(outer, frame_rgb, rgb)
        rgb = _mix(inner, fill, rgb)
        weight = np.where(outer, 0.0, weight)
    return make_texture(np.concatenate([rgb, weight[..., None]], -1), texel)


def paint_texture(rng: np.random.Generator) -> Texture:
    """Car bodies: tinted paint with panel seams, a dark rocker/wheel band and a chrome strip."""
    n, texel = 256, 4.0 / 256
    a, b = _grid(n, n, texel)
    paint = 0.85 + 0.05 * fractal_noise(rng, n, n, (20, 3))
    seam = np.abs((a % 1.3) - 0.65) < 0.012
    dark = (b < 0.42) | seam
    chrome = (b > 0.74) & (b < 0.78)
    rgb = np.stack([np.where(dark, 0.12, np.where(chrome, 0.8, paint))] * 3, -1)
    weight = np.where(dark | chrome, 0.0, 1.0) * np.ones_like(a)
    return make_texture(np.concatenate([rgb, weight[..., None]], -1), texel)


def cabin_texture(rng: np.random.Generator) -> Texture:
    """Car cabins: dark windows between tinted pillars (4 m period)."""
    n, texel = 256, 4.0 / 256
    a, b = _grid(n, n, texel)
    glass = 0.15 + 0.05 * fractal_noise(rng, n, n, (12, 3))
    window = (b > 1.06) & (b < 1.44) & (np.abs((a % 1.1) - 0.55) < 0.45)
    rgb = np.stack([np.where(window, glass, 0.85)] * 3, -1) * np.where(window[..., None],
                                                                        [0.9, 1.0, 1.15], 1.0)
    weight = np.where(window, 0.0, 1.0)
    return make_texture(np.concatenate([rgb, weight[..., None]], -1), texel)


def metal_texture(rng: np.random.Generator) -> Texture:
    """Poles and bins: brushed, tinted metal with bands (1 m period)."""
    n, texel = 128, 1.0 / 128
    _, b = _grid(n, n, texel)
    grey = 0.8 + 0.1 * periodic_noise(rng, n, n, 1.5) * np.ones((n, n))
    grey = np.where((b % 0.5) < 0.02, 0.45, grey)
    rgb = np.stack([grey] * 3, -1)
    return make_texture(np.concatenate([rgb, np.ones((n, n, 1))], -1), texel)


def cloud_texture(rng: np.random.Generator) -> Texture:
    """Cloud cover in [0, 1] (one channel) for the sky box, 512 m period."""
    n, texel = 256, 512.0 / 256
    clouds = np.clip(fractal_noise(rng, n, n, (24, 8, 2)) * 0.5 - 0.1, 0, 1)
    return make_texture(clouds[..., None], texel)


def make_textures(seed: int) -> Dict[int, Texture]:
    """Every surface material's texture, determined by ``seed``."""
    rng = np.random.default_rng([seed, 7919])
    return {ROAD: road_texture(rng), PAVING: paving_texture(rng),
            CONCRETE: concrete_texture(rng),
            BRICK_UPPER: facade_texture(rng, True, False),
            BRICK_GROUND: facade_texture(rng, True, True),
            PLASTER_UPPER: facade_texture(rng, False, False),
            PLASTER_GROUND: facade_texture(rng, False, True),
            PAINT: paint_texture(rng), CABIN: cabin_texture(rng), METAL: metal_texture(rng),
            SKY: cloud_texture(rng)}


def _lookup(texture: Texture, a: np.ndarray, b: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Bilinear lookup ``[N, C]`` in pyramid level ``level [N]`` at surface coordinates
    ``a, b [N]`` (metres), wrapping around the tile."""
    count, cols = len(a), 1024
    rows = max(1, -(-count // cols))
    maps = np.empty((2, rows * cols), np.float32)
    maps[:, count:] = 0.0
    texels = np.float32(texture.texel) * np.exp2(np.arange(len(texture.sizes)), dtype=np.float32)
    for axis, coordinate in enumerate((a, b)):
        size = texture.sizes[level, axis]
        texel = coordinate / texels[level] - np.float32(0.5)
        wrapped = texel - np.floor(texel / size) * size  # np.mod, ten times faster
        maps[axis, :count] = wrapped + texture.offsets[level, axis]
    out = cv2.remap(texture.atlas, maps[0].reshape(rows, cols), maps[1].reshape(rows, cols),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * cols, texture.channels)[:count]


def sample_texture(texture: Texture, a: np.ndarray, b: np.ndarray,
                   footprint: np.ndarray) -> np.ndarray:
    """Trilinear (mip-mapped) lookup at surface coordinates ``a, b [N]`` (metres) of pixels
    covering ``footprint [N]`` metres; returns ``[N, C]`` float32."""
    last = len(texture.sizes) - 1
    lod = np.clip(np.log2(np.maximum(footprint, 1e-9) / texture.texel), 0, last)
    low = np.minimum(lod.astype(np.int64), last - 1)
    frac = (lod - low).astype(np.float32)[:, None]
    fine = _lookup(texture, a, b, low)
    return fine + (_lookup(texture, a, b, low + 1) - fine) * frac
