"""The world: a street of textured, weathered axis-aligned boxes (buildings, lamps, cars, bins)
between kerbed sidewalks, and the per-face table shading reads."""

import dataclasses
from typing import Dict, Tuple

import numpy as np

from monodepth_tf.synthetic.street import (BIN, BRICK_BUILDING, CAR_BODY, CAR_CABIN,
                                           KERB_HEIGHT, KERB_X, KIND_SURFACES, PLASTER_BUILDING,
                                           POLE, ROAD, SIDEWALK, SKY, SKY_MARGIN)
from monodepth_tf.synthetic.textures import Texture

# Weathering: a smooth brightness field over world space (plane waves of 4-16 m wavelength),
# multiplying the colour of every solid surface; see make_world.
WEATHERING_WAVES, WEATHERING_WAVELENGTH, WEATHERING_AMPLITUDE = 6, (4.0, 16.0), 0.5
SUN = np.array([-0.5, -1.0, -0.4]) / np.linalg.norm([-0.5, -1.0, -0.4])  # towards the sun
AMBIENT = 0.4


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
