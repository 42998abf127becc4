"""A 64-ring scanner's returns: points on the rays of left-camera pixels at their exact depth, in
the velodyne frame (x forward, y left, z up)."""

import math
from typing import Tuple

import numpy as np

from monodepth_tf.synthetic.camera import CAMERA_HEIGHT, Intrinsics
from monodepth_tf.synthetic.street import GROUND

# velodyne (x forward, y left, z up) -> camera (x right, y down, z forward); the velodyne sits
# 8 cm above and 2 cm left of the camera, with no offset along the forward axis.
VELO_TO_CAM_R = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
VELO_TO_CAM_T = np.array([0.02, -0.08, 0.0])
LIDAR_RINGS = 64
LIDAR_ELEVATION = (2.0, -24.8)  # degrees, top and bottom ring (HDL-64E)
LIDAR_AZIMUTH_STEP = 0.09  # degrees
LIDAR_RANGE = 100.0


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
