"""KITTI calibration files: ``key: numbers`` lines, as the raw and odometry releases write them."""

from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from monodepth_tf.data.errors import DataError


def read_calib_file(path) -> Dict[str, np.ndarray]:
    """``{key: float64 array}`` of a calibration file; non-numeric lines (``calib_time``) are
    skipped.

    Raises:
        DataError: the file is missing or unreadable.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise DataError(f"{path}: cannot read calibration ({error.strerror or error})") from None
    values = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            values[key.strip()] = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            continue
    return values


def require(calib: Dict[str, np.ndarray], path, keys: Sequence[str], sizes: Sequence[int]):
    """The arrays of ``keys``, each checked to hold ``sizes[i]`` numbers."""
    out = []
    for key, size in zip(keys, sizes):
        if key not in calib:
            raise DataError(f"{path}: calibration key {key!r} is missing")
        if calib[key].size != size:
            raise DataError(f"{path}: calibration key {key!r} has {calib[key].size} numbers, "
                            f"expected {size}")
        out.append(calib[key])
    return out


def velo_to_camera(calib_dir, cam: int):
    """The projection of velodyne points into rectified camera ``cam`` (2 or 3) of a KITTI raw
    date folder: ``(P_velo_to_image [3, 4], image size (height, width))``, computed in float64
    as ``P_rect_0cam @ R_rect_00 @ [R | T]``."""
    calib_dir = Path(calib_dir)
    cam_file, velo_file = calib_dir / "calib_cam_to_cam.txt", calib_dir / "calib_velo_to_cam.txt"
    cam_calib, velo_calib = read_calib_file(cam_file), read_calib_file(velo_file)
    R, T = require(velo_calib, velo_file, ("R", "T"), (9, 3))
    R_rect, P_rect, size = require(cam_calib, cam_file,
                                   ("R_rect_00", f"P_rect_0{cam}", "S_rect_02"), (9, 12, 2))
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = R.reshape(3, 3)
    velo_to_cam[:3, 3] = T
    rect = np.eye(4)
    rect[:3, :3] = R_rect.reshape(3, 3)
    P = P_rect.reshape(3, 4) @ rect @ velo_to_cam
    return P, (int(size[1]), int(size[0]))


def read_odometry_poses(path) -> np.ndarray:
    """An odometry poses file (12 numbers a line, 3x4 camera-to-world) as ``[N, 4, 4]``."""
    path = Path(path)
    try:
        rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read poses ({error})") from None
    if rows.shape[1] != 12:
        raise DataError(f"{path}: pose lines have {rows.shape[1]} numbers, expected 12")
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3, :] = rows.reshape(-1, 3, 4)
    return poses
