"""The stereo rig: KITTI's rectified intrinsics rescaled to the image size, its baseline, and
the path it drives along the street."""

import dataclasses
import math
from typing import Tuple

import numpy as np

from monodepth_tf.synthetic.street import LANE_X

KITTI_HEIGHT, KITTI_WIDTH = 375, 1242
# 2011_09_26 P_rect_02 at 1242x375 (KITTI's 1-based image coordinates).
KITTI_FX, KITTI_FY, KITTI_CX, KITTI_CY = 721.5377, 721.5377, 609.5593, 172.854
BASELINE = 0.54
CAMERA_HEIGHT = 1.65


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
