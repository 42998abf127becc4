"""A synthetic street written in KITTI's raw layout, with the exact depth of every pixel.

The world (metres; x right, y down, z forward along the street; the road surface is y = 0 and
the cameras ride 1.65 m above it, as on KITTI's car) is a 2.5D street: an asphalt road with lane
markings between kerbed sidewalks, a front row of buildings at varying set-backs with windows
and doors, a taller back row seen through the alleys, street lamps, parked cars and bins, all
axis-aligned boxes; and around everything a "sky box" hundreds of metres away (far walls and a
cloud ceiling), so every pixel has a finite, exact depth. Every surface is textured (value
noise, bricks, slabs, stripes, windows), weathered (a smooth brightness field over space with
metres-long waves) and shaded by a fixed sun (Lambert), so photometric losses have gradients
everywhere, and, thanks to the weathering, still order wrong disparities tens of pixels off
(fine textures alone leave the loss flat there, and training from scratch stalls). Textures
are mip-mapped (box-filtered pyramids sampled trilinearly at each pixel's footprint) so distant
surfaces do not alias.

A stereo rig with KITTI's rectified intrinsics (2011_09_26 ``P_rect_02``, rescaled to the image
size) and a 0.54 m baseline drives along the street with varying speed and gentle yaw. Views are
ray cast: for pixel ``(row r, column c)`` the ray ``o + t R (x, y, 1)`` with ``x = (c + 1 - cx) /
fx``, ``y = (r + 1 - cy) / fy`` has camera z-depth ``t``. The ``+ 1`` puts pixel centres where
KITTI's LiDAR recipe (``pixel = round(u / w) - 1``) expects them, so a point sampled from a
pixel's ray projects back onto that pixel.

Depth convention: the camera's forward z (metres), float32. The LiDAR points of a frame lie on
the rays of left-camera pixels at those pixels' exact depth; the velodyne frame (x forward,
y left, z up) differs from the camera frame by a permutation and a translation with no forward
component, so a point's velodyne x equals its camera z equals the depth of its pixel.
"""

import dataclasses
import io
import math
import multiprocessing
import os
import zipfile
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

DATE = "2011_09_26"
KITTI_HEIGHT, KITTI_WIDTH = 375, 1242
# 2011_09_26 P_rect_02 at 1242x375 (KITTI's 1-based image coordinates).
KITTI_FX, KITTI_FY, KITTI_CX, KITTI_CY = 721.5377, 721.5377, 609.5593, 172.854
BASELINE = 0.54
CAMERA_HEIGHT = 1.65
# velodyne (x forward, y left, z up) -> camera (x right, y down, z forward); the velodyne sits
# 8 cm above and 2 cm left of the camera, with no offset along the forward axis.
VELO_TO_CAM_R = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
VELO_TO_CAM_T = np.array([0.02, -0.08, 0.0])
LIDAR_RINGS = 64
LIDAR_ELEVATION = (2.0, -24.8)  # degrees, top and bottom ring (HDL-64E)
LIDAR_AZIMUTH_STEP = 0.09  # degrees
LIDAR_RANGE = 100.0
NEAR = 0.05

# Street cross-section (|x|): road to the kerb, sidewalk beyond; lanes marked at 0 and +-4.
KERB_X, KERB_HEIGHT, EDGE_LINE_X, LANE_X = 6.0, 0.15, 4.0, 2.0
SKY_HALF_WIDTH, SKY_HEIGHT, SKY_MARGIN = 300.0, 60.0, 300.0

# Object kinds (boxes) and surface materials (textures).
SIDEWALK, BRICK_BUILDING, PLASTER_BUILDING, CAR_BODY, CAR_CABIN, POLE, BIN = range(7)
(ROAD, PAVING, CONCRETE, BRICK_UPPER, BRICK_GROUND, PLASTER_UPPER, PLASTER_GROUND, PAINT,
 CABIN, METAL, SKY) = range(11)
# (vertical faces, horizontal faces) of each kind
KIND_SURFACES = {SIDEWALK: (CONCRETE, PAVING), BRICK_BUILDING: (BRICK_UPPER, CONCRETE),
                 PLASTER_BUILDING: (PLASTER_UPPER, CONCRETE), CAR_BODY: (PAINT, PAINT),
                 CAR_CABIN: (CABIN, PAINT), POLE: (METAL, METAL), BIN: (METAL, METAL)}
GROUND_FLOOR = {BRICK_UPPER: BRICK_GROUND, PLASTER_UPPER: PLASTER_GROUND}
# Pixel codes below 0 (box faces are 6 * box + face, faces ordered -x, +x, -y, +y, -z, +z).
GROUND, SKY_X, SKY_Y, SKY_Z = -1, -2, -3, -4
NUM_SPECIAL = 4
# Weathering: a smooth brightness field over world space (plane waves of 4-16 m wavelength),
# multiplying the colour of every solid surface; see make_world.
WEATHERING_WAVES, WEATHERING_WAVELENGTH, WEATHERING_AMPLITUDE = 6, (4.0, 16.0), 0.5
SUN = np.array([-0.5, -1.0, -0.4]) / np.linalg.norm([-0.5, -1.0, -0.4])  # towards the sun
AMBIENT = 0.4


# ----------------------------------------------------------------------------- calibration


def kitti_number(value: float) -> str:
    """A number as KITTI's calibration files write it (``7.215377e+02``), with as many more
    digits as it takes to read back exactly."""
    return np.format_float_scientific(float(value), unique=True, min_digits=6)


def _exact(value: float) -> float:
    """``value`` as it reads back from a calibration file."""
    return float(kitti_number(value))


@dataclasses.dataclass(frozen=True)
class Intrinsics:
    """Rectified pinhole intrinsics in KITTI's 1-based image coordinates (pixel column ``c`` is
    centred on ``u = c + 1``), with the image size."""

    fx: float
    fy: float
    cx: float
    cy: float
    height: int
    width: int

    @classmethod
    def kitti(cls, height: int = KITTI_HEIGHT, width: int = KITTI_WIDTH) -> "Intrinsics":
        """KITTI's 2011_09_26 camera rescaled to ``height`` x ``width``, each value exactly as
        the calibration file written for it reads back."""
        sx, sy = width / KITTI_WIDTH, height / KITTI_HEIGHT
        return cls(_exact(KITTI_FX * sx), _exact(KITTI_FY * sy), _exact(KITTI_CX * sx),
                   _exact(KITTI_CY * sy), height, width)

    @property
    def K(self) -> np.ndarray:
        """``[3, 3]`` camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def ray_x(self) -> np.ndarray:
        """``[W]`` camera-frame ray x (at z = 1) of each pixel column's centre."""
        return (np.arange(self.width) + 1.0 - self.cx) / self.fx

    def ray_y(self) -> np.ndarray:
        """``[H]`` camera-frame ray y (at z = 1) of each pixel row's centre."""
        return (np.arange(self.height) + 1.0 - self.cy) / self.fy

    def projection(self, camera: int) -> np.ndarray:
        """``[3, 4]`` ``P_rect_0<camera>``: cameras 0 and 2 at the rectified origin, 1 and 3
        ``BASELINE`` to their right."""
        P = np.hstack([self.K, np.zeros((3, 1))])
        if camera % 2:
            P[0, 3] = -self.fx * BASELINE
        return P


def _line(key: str, values) -> str:
    return f"{key}: " + " ".join(kitti_number(v) for v in np.ravel(values))


def cam_to_cam_text(intrinsics: Intrinsics) -> str:
    """``calib_cam_to_cam.txt`` with the keys of KITTI's own file (images already rectified:
    no distortion, identity rotations)."""
    size = (intrinsics.width, intrinsics.height)
    lines = ["calib_time: 01-Jan-2026 00:00:00", _line("corner_dist", [0.0995])]
    for camera in range(4):
        name = f"0{camera}"
        lines += [_line(f"S_{name}", size), _line(f"K_{name}", intrinsics.K),
                  _line(f"D_{name}", np.zeros(5)), _line(f"R_{name}", np.eye(3)),
                  _line(f"T_{name}", [-BASELINE if camera % 2 else 0.0, 0.0, 0.0]),
                  _line(f"S_rect_{name}", size), _line(f"R_rect_{name}", np.eye(3)),
                  _line(f"P_rect_{name}", intrinsics.projection(camera))]
    return "\n".join(lines) + "\n"


def velo_to_cam_text() -> str:
    """``calib_velo_to_cam.txt``: ``camera = R velodyne + T``."""
    return "\n".join(["calib_time: 01-Jan-2026 00:00:00", _line("R", VELO_TO_CAM_R),
                      _line("T", VELO_TO_CAM_T), _line("delta_f", [0.0, 0.0]),
                      _line("delta_c", [0.0, 0.0])]) + "\n"


# ----------------------------------------------------------------------------- textures


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


# ----------------------------------------------------------------------------- the world


@dataclasses.dataclass
class World:
    """A street of axis-aligned boxes.

    Attributes:
        boxes: ``[N, 6]`` (x0, y0, z0, x1, y1, z1), metres, y down (road at 0).
        kinds: ``[N]`` object kind of each box (SIDEWALK, BRICK_BUILDING, ...).
        tints: ``[N, 3]`` RGB tint of each box's tintable texture parts.
        scales: ``[N, 2]`` texture scale along (a, b) of its faces (facade bay and storey).
        far_z: the far wall of the sky box (its side walls at +-SKY_HALF_WIDTH, its ceiling
            SKY_HEIGHT above the road).
        textures: surface material -> texture.
        waves: ``[K, 4]`` the weathering field's plane waves (see ``weathering``).
    """

    boxes: np.ndarray
    kinds: np.ndarray
    tints: np.ndarray
    scales: np.ndarray
    far_z: float
    textures: Dict[int, Texture]
    waves: np.ndarray


class _Builder:
    """Collects boxes for a World."""

    def __init__(self):
        self.boxes, self.kinds, self.tints, self.scales = [], [], [], []

    def add(self, box, kind: int, tint, scale=(1.0, 1.0)) -> None:
        self.boxes.append(box)
        self.kinds.append(kind)
        self.tints.append(tint)
        self.scales.append(scale)

    def side(self, side: int, near: float, far: float, y0: float, y1: float, z0: float,
             z1: float, kind: int, tint, scale=(1.0, 1.0)) -> None:
        """Adds a box spanning ``|x|`` in [near, far] on one side (-1 left, +1 right)."""
        x0, x1 = sorted((side * near, side * far))
        self.add([x0, y0, z0, x1, y1, z1], kind, tint, scale)


def _add_buildings(build: _Builder, rng: np.random.Generator, side: int, start: float,
                   end: float, front: bool) -> None:
    """A row of buildings: the front row at varying set-backs with alleys, or the taller back
    row behind it."""
    top = -KERB_HEIGHT
    z = start
    while z < end:
        length = rng.uniform(8, 22) if front else rng.uniform(15, 40)
        near = KERB_X + rng.uniform(1.5, 6.0) if front else 24.0 + rng.uniform(0, 4)
        height = rng.uniform(6, 22) if front else rng.uniform(14, 35)
        kind = BRICK_BUILDING if rng.random() < 0.5 else PLASTER_BUILDING
        tint = rng.uniform(0.35, 1.0, 3)
        scale = (3.0 / rng.uniform(2.6, 3.6), 3.0 / rng.uniform(2.8, 3.5))
        build.side(side, near, near + 10.0, top - height, top, z, z + length, kind, tint, scale)
        z += length + (rng.uniform(2, 6) if front and rng.random() < 0.35 else 0.0)


def _add_street_furniture(build: _Builder, rng: np.random.Generator, side: int, start: float,
                          end: float) -> None:
    """Street lamps (pole and arm), bins on the sidewalk, cars parked along the kerb."""
    top = -KERB_HEIGHT
    grey = (0.55, 0.58, 0.6)
    for z in np.arange(start + rng.uniform(0, 20), end, rng.uniform(18, 30)):
        build.side(side, KERB_X + 0.4, KERB_X + 0.58, top - 6.0, top, z, z + 0.18, POLE, grey)
        build.side(side, KERB_X - 1.2, KERB_X + 0.4, top - 6.0, top - 5.85, z, z + 0.18, POLE,
                   grey)
    for z in np.arange(start + rng.uniform(0, 30), end, rng.uniform(25, 45)):
        build.side(side, KERB_X + 0.8, KERB_X + 1.4, top - 1.1, top, z, z + 0.6, BIN,
                   rng.uniform(0.2, 0.8, 3))
    z = start + rng.uniform(0, 10)
    while z < end:
        length, width = rng.uniform(3.8, 4.8), rng.uniform(1.6, 1.85)
        near = KERB_X - 0.2 - width
        tint = rng.uniform(0.1, 1.0, 3)
        build.side(side, near, near + width, -1.0, -0.12, z, z + length, CAR_BODY, tint)
        build.side(side, near + 0.1, near + width - 0.1, -1.5, -1.0, z + 0.25 * length,
                   z + 0.8 * length, CAR_CABIN, tint)
        z += length + rng.uniform(1.5, 25)


def make_world(rng: np.random.Generator, start: float, end: float,
               textures: Dict[int, Texture]) -> World:
    """The street between ``z = start`` and ``end`` (metres), drawn from ``rng`` (the
    weathering waves last, so the layout is the same with or without them)."""
    build = _Builder()
    for side in (-1, 1):
        build.side(side, KERB_X, 40.0, -KERB_HEIGHT, 0.0, start, end, SIDEWALK, (1.0, 1.0, 1.0))
        _add_buildings(build, rng, side, start, end, front=True)
        _add_buildings(build, rng, side, start, end, front=False)
        _add_street_furniture(build, rng, side, start, end)
    return World(np.array(build.boxes, float), np.array(build.kinds), np.array(build.tints),
                 np.array(build.scales, float), end + SKY_MARGIN, textures,
                 weathering_waves(rng))


def weathering_waves(rng: np.random.Generator, count: int = WEATHERING_WAVES) -> np.ndarray:
    """``[count, 4]`` plane waves of the weathering field: wave vector (radians per metre,
    random direction, wavelength in WEATHERING_WAVELENGTH) and phase."""
    direction = rng.normal(size=(count, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    wavelength = rng.uniform(*WEATHERING_WAVELENGTH, (count, 1))
    return np.hstack([2 * np.pi * direction / wavelength, rng.uniform(0, 2 * np.pi, (count, 1))])


def weathering(waves: np.ndarray,
               point: Tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """``[N, 1]`` float32 brightness factor of world points ``point`` (3 arrays ``[N]``): one
    plus WEATHERING_AMPLITUDE times the sum of ``waves [K, 4]`` (unit std), kept in [0.2, 2]."""
    w = waves.astype(np.float32)
    phase = (point[0][:, None] * w[:, 0] + point[1][:, None] * w[:, 1]
             + point[2][:, None] * w[:, 2] + w[:, 3])
    field = np.sin(phase).sum(axis=1) / np.float32(np.sqrt(len(w) / 2))
    return np.clip(1 + np.float32(WEATHERING_AMPLITUDE) * field, 0.2, 2.0)[:, None]


@dataclasses.dataclass
class FaceTable:
    """Per pixel code (``code + NUM_SPECIAL``): what shading needs to know of each face.

    Attributes: ``axis [F]`` (0, 1, 2: the normal's axis), ``surface [F]`` material,
    ``tint [F, 3]``, ``origin [F]`` (subtracted from the across coordinate ``a``), ``scale
    [F, 2]`` texture scale of (a, b), ``shade [F]`` Lambert factor.
    """

    axis: np.ndarray
    surface: np.ndarray
    tint: np.ndarray
    origin: np.ndarray
    scale: np.ndarray
    shade: np.ndarray


def face_table(world: World) -> FaceTable:
    """The FaceTable of the sky box, the road and every box face."""
    n = len(world.boxes)
    face = np.tile(np.arange(6), n)
    box = np.repeat(np.arange(n), 6)
    axis = face // 2
    sign = np.where(face % 2, 1.0, -1.0)
    vertical = axis != 1
    surface = np.array([KIND_SURFACES[k][0 if v else 1] for k, v in
                        zip(world.kinds[box], vertical)], dtype=np.int64)
    # across coordinate: z along x-faces, x along z-faces, both measured from the box corner
    origin = np.where(axis == 0, world.boxes[box, 2], np.where(axis == 2, world.boxes[box, 0],
                                                                0.0))
    shade = AMBIENT + (1 - AMBIENT) * np.clip(sign * SUN[axis], 0, None)
    ground_shade = AMBIENT + (1 - AMBIENT) * max(-SUN[1], 0.0)
    # specials in code order -4..-1: SKY_Z, SKY_Y, SKY_X, GROUND
    single = np.float32
    return FaceTable(
        axis=np.concatenate([[2, 1, 0, 1], axis]),
        surface=np.concatenate([[SKY, SKY, SKY, ROAD], surface]),
        tint=np.concatenate([np.ones((4, 3)), world.tints[box]]).astype(single),
        origin=np.concatenate([[0.0, 0.0, 0.0, -KERB_X], origin]).astype(single),
        scale=np.concatenate([np.ones((4, 2)), np.where(vertical[:, None], world.scales[box],
                                                        1.0)]).astype(single),
        shade=np.concatenate([[1.0, 1.0, 1.0, ground_shade], shade]).astype(single))


# ----------------------------------------------------------------------------- the drive


def drive_path(rng: np.random.Generator, frames: int) -> Tuple[np.ndarray, np.ndarray]:
    """Left-camera centres ``[F, 3]`` and yaws ``[F]`` (radians, positive turning right):
    0.5-1.5 m per frame with smooth speed changes, weaving gently in the right-hand lane."""
    speed = np.empty(frames)
    speed[0] = rng.uniform(0.7, 1.3)
    for k in range(1, frames):
        speed[k] = np.clip(speed[k - 1] + rng.normal(0, 0.06), 0.5, 1.5)
    amplitude, period = rng.uniform(0.015, 0.04), rng.uniform(40, 90)
    yaw = amplitude * np.sin(2 * np.pi * np.arange(frames) / period + rng.uniform(0, 2 * np.pi))
    steps = np.stack([speed * np.sin(yaw), np.zeros(frames), speed * np.cos(yaw)], axis=1)
    positions = np.cumsum(np.vstack([[LANE_X, -CAMERA_HEIGHT, 0.0], steps[1:]]), axis=0)
    return positions, yaw


def yaw_rotation(yaw: float) -> np.ndarray:
    """``[3, 3]`` camera-to-world rotation of a camera turned by ``yaw`` about the y axis."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclasses.dataclass(frozen=True)
class View:
    """One camera pose's rays; with no pitch or roll, ray x and z depend on the column only and
    ray y on the row only.

    Attributes: ``origin [3]``; ``dx, dz [W]``; ``dy [H]`` (world ray directions at camera
    z = 1, so the ray parameter is the camera z-depth); ``yaw``.
    """

    origin: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    dz: np.ndarray
    yaw: float


def make_view(intrinsics: Intrinsics, origin: np.ndarray, yaw: float) -> View:
    x = intrinsics.ray_x()
    c, s = math.cos(yaw), math.sin(yaw)
    return View(np.asarray(origin, float), c * x + s, intrinsics.ray_y(), c - s * x, yaw)


# ----------------------------------------------------------------------------- ray casting


def _far_surfaces(world: World, view: View) -> Tuple[np.ndarray, np.ndarray]:
    """Depth ``[H, W]`` and code of the road plane and the sky box, the background of all."""
    o = view.origin
    with np.errstate(divide="ignore"):
        t_ground = np.where(view.dy > 0, -o[1] / view.dy, np.inf)
        t_ceiling = np.where(view.dy < 0, (-SKY_HEIGHT - o[1]) / view.dy, np.inf)
        t_side = (np.where(view.dx >= 0, SKY_HALF_WIDTH, -SKY_HALF_WIDTH) - o[0]) / view.dx
    t_far = (world.far_z - o[2]) / view.dz
    t_rows = np.minimum(t_ground, t_ceiling)
    code_rows = np.where(t_ground <= t_ceiling, GROUND, SKY_Y)
    t_cols = np.minimum(t_side, t_far)
    code_cols = np.where(t_side <= t_far, SKY_X, SKY_Z)
    rows_win = t_rows[:, None] <= t_cols[None, :]
    depth = np.where(rows_win, t_rows[:, None], t_cols[None, :])
    code = np.where(rows_win, code_rows[:, None], code_cols[None, :]).astype(np.int32)
    return depth, code


# corners of a box are numbered 4 i + 2 j + k for (x, y, z) = (lo or hi by i, j, k)
FACE_CORNERS = [[n for n in range(8) if (n >> (2 - face // 2)) & 1 == face % 2]
                for face in range(6)]


def face_windows(world: World, view: View,
                 intrinsics: Intrinsics) -> Tuple[np.ndarray, np.ndarray]:
    """``(windows [N, 6, 4], nearest [N, 6])``: the pixel window ``(r0, r1, c0, c1)`` of each
    box face that faces the camera and may be on the image (empty, ``r0 == r1``, for the
    others) and the least depth any of its points can have."""
    b, o = world.boxes, view.origin
    corners = np.stack([b[:, [3 * i, 1 + 3 * j, 2 + 3 * k]] for i in (0, 1) for j in (0, 1)
                        for k in (0, 1)], axis=1) - o
    c, s = math.cos(view.yaw), math.sin(view.yaw)
    x, y = c * corners[..., 0] - s * corners[..., 2], corners[..., 1]
    z = s * corners[..., 0] + c * corners[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = intrinsics.fx * x / z + intrinsics.cx - 1.0
        rows = intrinsics.fy * y / z + intrinsics.cy - 1.0
    windows = np.zeros((len(b), 6, 4), np.int64)
    nearest = np.zeros((len(b), 6))
    size = np.array([intrinsics.height, intrinsics.width])
    for face, picks in enumerate(FACE_CORNERS):
        axis = face // 2
        facing = o[axis] > b[:, axis + 3] if face % 2 else o[axis] < b[:, axis]
        near = z[:, picks] > NEAR
        lo = np.stack([rows[:, picks].min(1), cols[:, picks].min(1)], 1)
        hi = np.stack([rows[:, picks].max(1), cols[:, picks].max(1)], 1)
        lo = np.clip(np.floor(np.where(near.all(1)[:, None], lo, 0)), 0, size)
        hi = np.clip(np.ceil(np.where(near.all(1)[:, None], hi, size)) + 1, 0, size)
        show = facing & near.any(1) & (lo < hi).all(1)
        windows[show, face] = np.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1]], 1)[show]
        nearest[:, face] = np.where(near.all(1), z[:, picks].min(1), NEAR)
    return windows, nearest


def _draw_vertical(box, face, code, view, window, depth, codes) -> None:
    """Z-buffers a face of constant x (or z): its depth depends on the column only, and in each
    column it covers one run of rows."""
    axis, r0, r1, c0, c1 = face // 2, *window
    other = 2 - axis
    o = view.origin
    d_axis = (view.dx if axis == 0 else view.dz)[c0:c1]
    d_other = (view.dz if axis == 0 else view.dx)[c0:c1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (box[axis + 3 * (face % 2)] - o[axis]) / d_axis
        hit = o[other] + t * d_other
        ok = (t > NEAR) & (hit >= box[other]) & (hit <= box[other + 3])
        t = np.where(ok, t, 1.0)
        first = np.searchsorted(view.dy, (box[1] - o[1]) / t, "left")
        last = np.searchsorted(view.dy, (box[4] - o[1]) / t, "right")
    first, last = np.where(ok, np.maximum(first, r0), r1), np.where(ok, np.minimum(last, r1), r0)
    if not ok.any() or first.min() >= last.max():
        return
    r0, r1 = int(first.min()), int(last.max())
    rows = np.arange(r0, r1)[:, None]
    z_win, c_win = depth[r0:r1, c0:c1], codes[r0:r1, c0:c1]
    mask = (rows >= first) & (rows < last) & (t < z_win)
    np.copyto(z_win, np.broadcast_to(t, z_win.shape), where=mask)
    np.copyto(c_win, code, where=mask)


def _draw_horizontal(box, face, code, view, window, depth, codes) -> None:
    """Z-buffers a face of constant y: its depth depends on the row only."""
    r0, r1, c0, c1 = window
    o = view.origin
    dy = view.dy[r0:r1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((box[1 + 3 * (face % 2)] - o[1]) / dy)[:, None]
        hx = o[0] + t * view.dx[None, c0:c1]
        hz = o[2] + t * view.dz[None, c0:c1]
    z_win, c_win = depth[r0:r1, c0:c1], codes[r0:r1, c0:c1]
    mask = ((t > NEAR) & (hx >= box[0]) & (hx <= box[3]) & (hz >= box[2]) & (hz <= box[5])
            & (t < z_win))
    np.copyto(z_win, np.broadcast_to(t, z_win.shape), where=mask)
    np.copyto(c_win, code, where=mask)


def cast(world: World, view: View, intrinsics: Intrinsics) -> Tuple[np.ndarray, np.ndarray]:
    """Ray casts a view: ``(depth [H, W] float64 camera z, code [H, W] int32 surface hit)``."""
    depth, codes = _far_surfaces(world, view)
    windows, nearest = face_windows(world, view, intrinsics)
    index, face = np.nonzero(windows[:, :, 0] < windows[:, :, 1])
    order = np.argsort(nearest[index, face], kind="stable")  # near faces hide far ones
    for i, f in zip(index[order], face[order]):
        r0, r1, c0, c1 = windows[i, f]
        if depth[r0:r1, c0:c1].max() <= nearest[i, f]:
            continue  # everything in its window is already nearer
        draw = _draw_horizontal if f // 2 == 1 else _draw_vertical
        draw(world.boxes[i], f, 6 * i + f, view, windows[i, f], depth, codes)
    return depth, codes


# ----------------------------------------------------------------------------- shading


def _footprints(axis: np.ndarray, t: np.ndarray, d, yaw: float,
                intrinsics: Intrinsics) -> np.ndarray:
    """World size (metres) of each pixel on the surface it shows: the longer of the surface
    displacements caused by a one-pixel step along the image x and y.

    Args: ``axis [N]`` normal axis of the hit face, ``t [N]`` depth, ``d`` (dx, dy, dz) ``[N]``
    ray directions.
    """
    dx, dy, dz = d
    c, s = math.cos(yaw), math.sin(yaw)
    step_u = np.ones_like(t)  # image-x step on horizontal faces: t / fx
    step_v = np.ones_like(t)  # image-y step on vertical faces: t / fy
    for normal in np.flatnonzero(np.bincount(axis, minlength=3)):
        on = axis == normal
        if normal == 0:
            q = c / dx[on]
            step_u[on] = np.hypot(dy[on] * q, s + dz[on] * q)
        elif normal == 2:
            q = -s / dz[on]
            step_u[on] = np.hypot(c - dx[on] * q, dy[on] * q)
        else:
            step_v[on] = np.hypot(dx[on], dz[on]) / np.abs(dy[on])
    return t * np.maximum(step_u / intrinsics.fx, step_v / intrinsics.fy)


def _sky_colour(height: np.ndarray, clouds: np.ndarray, fade: np.ndarray) -> np.ndarray:
    """Haze near the horizon, blue aloft, clouds on top: ``[N, 3]``."""
    aloft = np.sqrt(np.clip(height / SKY_HEIGHT, 0, 1))[:, None]
    base = np.array([0.8, 0.85, 0.9]) * (1 - aloft) + np.array([0.42, 0.6, 0.88]) * aloft
    cover = (clouds * fade)[:, None]
    return base * (1 - cover) + np.array([0.97, 0.97, 0.98]) * cover


def group_indices(keys: np.ndarray, count: int) -> List[np.ndarray]:
    """For each value ``0 .. count - 1`` of the small non-negative integers ``keys [N]``, the
    indices holding it (ascending)."""
    order = np.argsort(keys.astype(np.uint8), kind="stable")
    return np.split(order, np.cumsum(np.bincount(keys, minlength=count))[:-1])


@dataclasses.dataclass
class _Hits:
    """Surface hits of some pixels: texture coordinates ``a, b [N]`` (metres, scaled),
    ``footprint [N]`` (metres), world ``point`` (3 arrays ``[N]``), face-table ``face [N]``."""

    a: np.ndarray
    b: np.ndarray
    footprint: np.ndarray
    point: Tuple[np.ndarray, np.ndarray, np.ndarray]
    face: np.ndarray


def _hits(table: FaceTable, view: View, depth: np.ndarray, face: np.ndarray,
          pixels: np.ndarray, intrinsics: Intrinsics) -> _Hits:
    """Where the rays of ``pixels [N]`` (flat indices) meet their faces ``face [N]``."""
    rows, cols = np.divmod(pixels, intrinsics.width)
    t = depth.ravel()[pixels].astype(np.float32)
    d = tuple(v.astype(np.float32)[i] for v, i in ((view.dx, cols), (view.dy, rows),
                                                   (view.dz, cols)))
    point = tuple(np.float32(view.origin[i]) + t * d[i] for i in range(3))
    axis, scale = table.axis[face], table.scale[face]
    a = (np.where(axis == 0, point[2], point[0]) - table.origin[face]) * scale[:, 0]
    b = np.where(axis == 1, point[2], -point[1]) * scale[:, 1]
    footprint = _footprints(axis, t, d, view.yaw, intrinsics) * np.maximum(scale[:, 0],
                                                                           scale[:, 1])
    return _Hits(a, b, footprint, point, face)


def _surface_colour(world: World, table: FaceTable, material: int, hits: _Hits) -> np.ndarray:
    """``[N, 3]`` shaded colour of hits on one material (facades: ground floor below 3 m)."""
    if material == SKY:
        clouds = sample_texture(world.textures[SKY], hits.a, hits.b, hits.footprint)[:, 0]
        x, y, z = hits.point
        fade = np.clip(np.minimum(SKY_HALF_WIDTH - np.abs(x), world.far_z - z) / 150.0, 0, 1)
        return _sky_colour(-y, clouds, fade)
    if material in GROUND_FLOOR:  # both facade textures have a tint channel
        texel = np.empty((len(hits.a), 4), np.float32)
        ground = hits.b < 3.0
        for name, chosen in ((material, ~ground), (GROUND_FLOOR[material], ground)):
            texel[chosen] = sample_texture(world.textures[name], hits.a[chosen], hits.b[chosen],
                                           hits.footprint[chosen])
    else:
        texel = sample_texture(world.textures[material], hits.a, hits.b, hits.footprint)
    albedo = texel[:, :3]
    if texel.shape[1] == 4:
        weight = texel[:, 3:]
        albedo = albedo * (1 - weight + weight * table.tint[hits.face])
    return albedo * table.shade[hits.face, None] * weathering(world.waves, hits.point)


def shade(world: World, table: FaceTable, view: View, depth: np.ndarray, codes: np.ndarray,
          intrinsics: Intrinsics) -> np.ndarray:
    """The colour ``[H, W, 3]`` float32 in [0, 1] of a cast view."""
    face = (codes + NUM_SPECIAL).ravel()
    colour = np.empty((face.size, 3), np.float32)
    for material, pixels in enumerate(group_indices(table.surface[face], len(world.textures))):
        if len(pixels):
            hits = _hits(table, view, depth, face[pixels], pixels, intrinsics)
            colour[pixels] = _surface_colour(world, table, material, hits)
    return np.clip(colour, 0, 1).reshape(*depth.shape, 3)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255.0).astype(np.uint8)


# ----------------------------------------------------------------------------- LiDAR


def lidar_pixels(intrinsics: Intrinsics) -> Tuple[np.ndarray, np.ndarray]:
    """Pixels ``(rows [N], cols [N])`` a 64-ring scanner's beams fall on in the left image:
    rings from +2 to -24.8 degrees of elevation, 0.09 degree azimuth steps, each beam on the
    pixel whose centre is nearest, duplicates dropped. Column 0 is left out: the original's
    ground-truth export gives the last pixel of a row and the first of the next one index."""
    elevation = np.radians(np.linspace(*LIDAR_ELEVATION, LIDAR_RINGS))[:, None]
    half_fov = math.atan((intrinsics.width + 1 - intrinsics.cx) / intrinsics.fx) + 0.01
    azimuth = np.radians(np.arange(-90.0, 90.0, LIDAR_AZIMUTH_STEP))
    azimuth = azimuth[np.abs(azimuth) < half_fov][None, :]
    u = intrinsics.fx * np.tan(azimuth) + intrinsics.cx
    v = -intrinsics.fy * np.tan(elevation) / np.cos(azimuth) + intrinsics.cy
    cols = np.rint(np.broadcast_to(u, v.shape)).astype(np.int64).ravel() - 1
    rows = np.rint(v).astype(np.int64).ravel() - 1
    inside = (cols >= 1) & (cols < intrinsics.width) & (rows >= 0) & (rows < intrinsics.height)
    flat = np.unique(rows[inside] * intrinsics.width + cols[inside])
    return flat // intrinsics.width, flat % intrinsics.width


def camera_to_velodyne(points: np.ndarray) -> np.ndarray:
    """``[N, 3]`` camera-frame points in the velodyne frame (inverse of velo_to_cam)."""
    return (points - VELO_TO_CAM_T) @ VELO_TO_CAM_R


def rear_ground_points() -> np.ndarray:
    """``[N, 3]`` velodyne-frame returns from the free lane behind the car (never projected:
    they have negative x, as a real scan's rear half has)."""
    height = CAMERA_HEIGHT - VELO_TO_CAM_T[1]
    elevation = np.radians(np.linspace(*LIDAR_ELEVATION, LIDAR_RINGS))
    reach = height / np.tan(-elevation[elevation < -np.radians(6)])
    azimuth = np.radians(np.arange(160.0, 200.0, 1.0))
    x = reach[:, None] * np.cos(azimuth)[None, :]
    y = reach[:, None] * np.sin(azimuth)[None, :]
    keep = (np.abs(y) < 0.8) & (x > -12.0)
    z = np.full(keep.sum(), -height)
    return np.stack([x[keep], y[keep], z], axis=1)


def lidar_scan(depth: np.ndarray, codes: np.ndarray, image: np.ndarray,
               intrinsics: Intrinsics, pixels: Tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The scan ``[N, 4]`` float32 (x forward, y left, z up, reflectance) of one left view.

    Each beam pixel that shows a solid surface within LIDAR_RANGE gives a point on its ray
    (through ``(c + 1, r + 1)``) at its exact depth; reflectance is the pixel's luminance.
    """
    rows, cols = pixels
    z = depth[rows, cols]
    solid = (codes[rows, cols] >= GROUND) & (z <= LIDAR_RANGE)
    rows, cols, z = rows[solid], cols[solid], z[solid]
    cam = np.stack([(cols + 1.0 - intrinsics.cx) / intrinsics.fx * z,
                    (rows + 1.0 - intrinsics.cy) / intrinsics.fy * z, z], axis=1)
    reflectance = image[rows, cols].mean(axis=1, keepdims=True) / 255.0
    front = np.hstack([camera_to_velodyne(cam), np.round(reflectance, 2)])
    rear = rear_ground_points()
    rear = np.hstack([rear, np.full((len(rear), 1), 0.3)])
    return np.vstack([front, rear]).astype(np.float32)


# ----------------------------------------------------------------------------- writing


def split_frames(num_drives: int, frames: int) -> Dict[str, List[Tuple[int, int]]]:
    """``{train, val, test: [(drive, frame), ...]}``, deterministic.

    Test: the last drive, held out whole; with a single drive its last fifth instead. Val: the
    last tenth of every other drive. Train: the rest. A stretch's first and last frames are
    never listed, so frames -1 and +1 of every sample exist and belong to the same stretch.
    """
    tail_val = max(3, frames // 10)
    if num_drives == 1:
        tail_test = max(3, frames // 5)
        cut_val, cut_test = frames - tail_test - tail_val, frames - tail_test
        return {"train": [(0, f) for f in range(1, cut_val - 1)],
                "val": [(0, f) for f in range(cut_val + 1, cut_test - 1)],
                "test": [(0, f) for f in range(cut_test + 1, frames - 1)]}
    cut_val = frames - tail_val
    return {"train": [(d, f) for d in range(num_drives - 1) for f in range(1, cut_val - 1)],
            "val": [(d, f) for d in range(num_drives - 1) for f in range(cut_val + 1, frames - 1)],
            "test": [(num_drives - 1, f) for f in range(1, frames - 1)]}


def drive_folder(drive: int) -> str:
    """``<date>/<date>_drive_<nnnn>_sync`` of drive index ``drive`` (numbered from 1)."""
    return f"{DATE}/{DATE}_drive_{drive + 1:04d}_sync"


def pose_lines(positions: np.ndarray, yaws: np.ndarray) -> str:
    """Camera-2-to-world poses relative to the first frame, 12 numbers a line (the odometry
    release's poses format)."""
    to_first = yaw_rotation(-yaws[0])
    lines = []
    for p, yaw in zip(positions, yaws):
        pose = np.hstack([yaw_rotation(yaw - yaws[0]), (to_first @ (p - positions[0]))[:, None]])
        lines.append(" ".join(kitti_number(v) for v in pose.ravel()))
    return "\n".join(lines) + "\n"


def write_npz(path: Path, arrays: Dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but byte-for-byte reproducible (fixed zip timestamps)."""
    with zipfile.ZipFile(path.with_name(path.name + ".partial"), "w",
                         zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())
    path.with_name(path.name + ".partial").replace(path)


@dataclasses.dataclass(frozen=True)
class _Job:
    """Frames ``[start, stop)`` of one drive to render and write."""

    root: str
    seed: int
    drive: int
    frames: int
    start: int
    stop: int
    intrinsics: Intrinsics
    ext: str
    keep: Tuple[int, ...]


_CACHE: Dict[str, tuple] = {}  # per process: the last drive built and its seed's textures


def drive_setup(seed: int, drive: int, frames: int, with_world: bool = True):
    """``(world, face table, positions [F, 3], yaws [F])`` of a drive (world and table None
    when not ``with_world``); the last one built is kept for the next call."""
    rng = np.random.default_rng([seed, drive])
    positions, yaws = drive_path(rng, frames)
    if not with_world:
        return None, None, positions, yaws
    key = (seed, drive, frames)
    if _CACHE.get("drive", (None,))[0] != key:
        if _CACHE.get("textures", (None,))[0] != seed:
            _CACHE["textures"] = (seed, make_textures(seed))
        world = make_world(rng, -40.0, float(positions[-1, 2]) + 200.0, _CACHE["textures"][1])
        _CACHE["drive"] = (key, world, face_table(world))
    return _CACHE["drive"][1], _CACHE["drive"][2], positions, yaws


def render_frame(world: World, table: FaceTable, intrinsics: Intrinsics, position: np.ndarray,
                 yaw: float, camera: int = 2) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One camera (2 left, 3 right) of the rig whose left camera is at ``position``:
    ``(image [H, W, 3] uint8 RGB, depth [H, W] float64, code [H, W] int32)``."""
    if camera == 3:
        position = position + yaw_rotation(yaw) @ np.array([BASELINE, 0.0, 0.0])
    view = make_view(intrinsics, position, yaw)
    depth, codes = cast(world, view, intrinsics)
    return to_uint8(shade(world, table, view, depth, codes, intrinsics)), depth, codes


def _run_job(job: _Job) -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    """Renders and writes a job's frames; returns ``{frame: (left depth, right depth)}`` of
    the frames in ``job.keep`` (float32)."""
    world, table, positions, yaws = drive_setup(job.seed, job.drive, job.frames)
    folder = Path(job.root) / drive_folder(job.drive)
    pixels = lidar_pixels(job.intrinsics)
    kept = {}
    for frame in range(job.start, job.stop):
        name = f"{frame:010d}"
        depths = []
        for camera in (2, 3):
            image, depth, codes = render_frame(world, table, job.intrinsics, positions[frame],
                                               yaws[frame], camera)
            cv2.imwrite(str(folder / f"image_0{camera}" / "data" / f"{name}.{job.ext}"),
                        image[..., ::-1])
            if camera == 2:
                lidar_scan(depth, codes, image, job.intrinsics, pixels).tofile(
                    folder / "velodyne_points" / "data" / f"{name}.bin")
            depths.append(depth.astype(np.float32))
        if frame in job.keep:
            kept[frame] = (depths[0], depths[1])
    return kept


def _worker_init() -> None:
    cv2.setNumThreads(1)


def _job_name(job: _Job) -> str:
    return f"frames {job.start}-{job.stop - 1} of {drive_folder(job.drive)}"


def _run_jobs(jobs: List[_Job], workers: int,
              run_job: Callable[[_Job], dict] = _run_job) -> List[dict]:
    """``run_job`` of every job, in order, in ``workers`` processes (here when one).

    Raises:
        RuntimeError: naming the job, when a worker process died (killed, out of memory) or
            the job raised (chained to its error); the other jobs are cancelled.
    """
    if workers <= 1 or len(jobs) <= 1:
        return [run_job(job) for job in jobs]
    # "spawn", never "fork": a process that has TensorFlow or OpenCV threads running (a test,
    # bin/train's demo) deadlocks its forked children on locks those threads held. Unlike
    # multiprocessing.Pool, which replaces a dead worker and waits forever for its task, the
    # executor fails every pending job as soon as a worker dies.
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(workers, mp_context=context,
                                     initializer=_worker_init) as pool:
        pending = [pool.submit(run_job, job) for job in jobs]
        results = []
        for job, future in zip(jobs, pending):
            try:
                results.append(future.result())
            except BrokenProcessPool as error:
                _cancel(pending)
                raise RuntimeError(f"a worker process died while writing {_job_name(job)} "
                                   f"under {job.root}: {error}") from error
            except Exception as error:
                _cancel(pending)
                raise RuntimeError(f"writing {_job_name(job)} under {job.root} failed: "
                                   f"{type(error).__name__}: {error}") from error
        return results


def _cancel(pending: List[futures.Future]) -> None:
    for future in pending:
        future.cancel()


@dataclasses.dataclass(frozen=True)
class SyntheticSummary:
    """What make_synthetic_kitti wrote.

    Attributes: ``root``; ``drives`` (their folders relative to root); ``frames`` (stereo
    frames in all); ``train``, ``val``, ``test`` (lines of each split list); ``split_dir``
    (``root/splits``, holding ``synthetic/``); ``gt_depths`` (path of gt_depths.npz).
    """

    root: Path
    drives: Tuple[str, ...]
    frames: int
    train: int
    val: int
    test: int
    split_dir: Path
    gt_depths: Path


def _check_arguments(num_drives, frames_per_drive, height, width, ext) -> None:
    if num_drives < 1:
        raise ValueError(f"--num_drives must be at least 1, got {num_drives}")
    if frames_per_drive < 10:
        raise ValueError(f"--frames_per_drive must be at least 10, got {frames_per_drive}")
    if height < 16 or width < 16:
        raise ValueError(f"--height and --width must be at least 16, got {height}x{width}")
    if ext not in ("png", "jpg"):
        raise ValueError(f"--ext must be png or jpg, got {ext!r}")


def _write_splits(split_dir: Path, splits: Dict[str, List[Tuple[int, int]]]) -> Dict[str, int]:
    """Writes the three lists (train with both cameras as targets, val and test the left)."""
    split_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, items in splits.items():
        sides = ("l", "r") if name == "train" else ("l",)
        lines = [f"{drive_folder(d)} {f} {side}" for d, f in items for side in sides]
        (split_dir / f"{name}_files.txt").write_text("\n".join(lines) + "\n")
        counts[name] = len(lines)
    return counts


def make_synthetic_kitti(output_dir, seed: int = 0, num_drives: int = 3,
                         frames_per_drive: int = 100, height: int = KITTI_HEIGHT,
                         width: int = KITTI_WIDTH, ext: str = "png",
                         workers: Optional[int] = None) -> SyntheticSummary:
    """Writes a synthetic street in KITTI's raw layout; the same arguments give the same bytes.

    Writes, under ``output_dir``:

    - ``2011_09_26/calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt``;
    - per drive ``2011_09_26/2011_09_26_drive_000N_sync/``: ``image_02/data/<10 digits>.<ext>``
      (left), ``image_03/data/...`` (right), ``velodyne_points/data/<10 digits>.bin`` and
      ``poses.txt`` (left-camera-to-world of each frame relative to the first, odometry
      format);
    - ``splits/synthetic/{train,val,test}_files.txt`` and ``gt_depths.npz``: key ``data``, the
      ``[N, H, W]`` float32 exact dense depth of camera 2 (the left camera, the one the test
      lines name) of each test line, in order; key ``cam3`` the same for camera 3. Sky pixels
      hold the sky box's depth (hundreds of metres), so the evaluation's 80 m cap leaves them
      out.

    Args:
        output_dir: root folder (created).
        seed: world, path and texture seed.
        num_drives, frames_per_drive: how many drives (streets) and stereo frames each.
        height, width: image size; intrinsics are KITTI's scaled to it.
        ext: ``png`` or ``jpg``.
        workers: processes (default: the CPU count, one for small jobs).
    """
    _check_arguments(num_drives, frames_per_drive, height, width, ext)
    root = Path(output_dir)
    intrinsics = Intrinsics.kitti(height, width)
    (root / DATE).mkdir(parents=True, exist_ok=True)
    (root / DATE / "calib_cam_to_cam.txt").write_text(cam_to_cam_text(intrinsics))
    (root / DATE / "calib_velo_to_cam.txt").write_text(velo_to_cam_text())
    for drive in range(num_drives):
        folder = root / drive_folder(drive)
        for sub in ("image_02/data", "image_03/data", "velodyne_points/data"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        _, _, positions, yaws = drive_setup(seed, drive, frames_per_drive, with_world=False)
        (folder / "poses.txt").write_text(pose_lines(positions, yaws))
    splits = split_frames(num_drives, frames_per_drive)
    if workers is None:
        work = num_drives * frames_per_drive * height * width
        workers = (os.cpu_count() or 1) if work > 20_000_000 else 1
    chunk = max(5, -(-frames_per_drive // max(1, 2 * workers)))
    jobs = [_Job(str(root), seed, d, frames_per_drive, start,
                 min(start + chunk, frames_per_drive), intrinsics, ext,
                 tuple(f for dd, f in splits["test"] if dd == d))
            for d in range(num_drives) for start in range(0, frames_per_drive, chunk)]
    kept = {}
    for job, result in zip(jobs, _run_jobs(jobs, workers)):
        kept.update({(job.drive, f): v for f, v in result.items()})
    counts = _write_splits(root / "splits" / "synthetic", splits)
    gt_path = root / "splits" / "synthetic" / "gt_depths.npz"
    # One [N, H, W] float32 array per camera (all maps share the image size): indexes like the
    # original's object array, and needs no pickle, whose bytes would depend on whether a map
    # was rendered here or came back from a worker process.
    maps = {key: np.stack([kept[item][camera] for item in splits["test"]]).astype(np.float32)
            for camera, key in enumerate(("data", "cam3"))}
    write_npz(gt_path, maps)
    return SyntheticSummary(root, tuple(drive_folder(d) for d in range(num_drives)),
                            num_drives * frames_per_drive, counts["train"], counts["val"],
                            counts["test"], root / "splits", gt_path)
