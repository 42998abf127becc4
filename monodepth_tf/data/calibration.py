"""KITTI calibration and pose files.

Raw release, one pair of files per date folder (``<root>/<date>/``):

* ``calib_cam_to_cam.txt``: per camera ``0x`` the keys ``S_0x K_0x D_0x R_0x T_0x`` (unrectified)
  and ``S_rect_0x`` (2 numbers: width, height), ``R_rect_0x`` (9, row-major 3x3),
  ``P_rect_0x`` (12, row-major 3x4), plus ``calib_time`` (a date, not numbers: skipped) and
  ``corner_dist``.
* ``calib_velo_to_cam.txt``: ``R`` (9) and ``T`` (3), the velodyne -> camera 0 rigid motion.

Odometry release: ``sequences/NN/calib.txt`` with ``P0``..``P3`` (12 each, the rectified
projections of cameras 0..3) and ``Tr`` (12, velodyne -> camera 0); ``poses/NN.txt`` with one
3x4 row-major camera-0-to-world pose (12 numbers) a line.

All values are float64: the LiDAR ground truth depends on computing in double precision.
"""

from pathlib import Path
from typing import Dict, NamedTuple, Tuple, Union

import numpy as np

from monodepth_tf.data.errors import DataError

PathLike = Union[str, Path]

CAM_TO_CAM = "calib_cam_to_cam.txt"
VELO_TO_CAM = "calib_velo_to_cam.txt"


class Calibration(dict):
    """``{key: float64 [n]}`` read from one calibration file.

    Looking up a key the file does not hold raises :class:`DataError` naming the file and the
    key (``in``, ``get`` and iteration behave as for any dict).

    Attributes:
        path: the file the values come from.
    """

    def __init__(self, path: PathLike, values: Dict[str, np.ndarray]):
        super().__init__(values)
        self.path = Path(path)

    def __missing__(self, key: str) -> np.ndarray:
        raise DataError(f"{self.path}: calibration key {key!r} is missing")

    def matrix(self, key: str, shape: Tuple[int, ...]) -> np.ndarray:
        """The value of ``key`` reshaped to ``shape``; DataError when its size does not fit."""
        value = self[key]
        if value.size != int(np.prod(shape)):
            raise DataError(f"{self.path}: calibration key {key!r} has {value.size} numbers, "
                            f"expected {int(np.prod(shape))}")
        return value.reshape(shape)


def _parse_numbers(text: str) -> np.ndarray:
    """The whitespace-separated numbers of ``text`` as float64 ``[n]`` (ValueError if any is
    not a number)."""
    return np.array([float(token) for token in text.split()], dtype=np.float64)


def read_calib_file(path: PathLike) -> Calibration:
    """Reads a ``key: numbers`` file (any KITTI calibration file).

    Lines without a colon, and lines whose value is not a list of numbers (``calib_time:
    09-Jan-2012 13:57:47``), are skipped.

    Returns:
        A :class:`Calibration`: ``{key: float64 [n]}``.

    Raises:
        DataError: the file is missing or cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataError(f"{path}: calibration file missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: calibration file unreadable ({error})") from None
    values = {}
    for line in text.splitlines():
        key, colon, rest = line.partition(":")
        if not colon or not key.strip():
            continue
        try:
            values[key.strip()] = _parse_numbers(rest)
        except ValueError:
            continue
    return Calibration(path, values)


def velo_to_cam_matrix(velo_calib: Calibration) -> np.ndarray:
    """``[4, 4]`` velodyne -> camera 0 (unrectified): ``[[R, T], [0, 0, 0, 1]]``."""
    motion = np.eye(4)
    motion[:3, :3] = velo_calib.matrix("R", (3, 3))
    motion[:3, 3] = velo_calib.matrix("T", (3,))
    return motion


def rectification_matrix(cam_calib: Calibration) -> np.ndarray:
    """``[4, 4]`` the rectifying rotation ``R_rect_00`` padded with ``[0, 0, 0, 1]``."""
    rect = np.eye(4)
    rect[:3, :3] = cam_calib.matrix("R_rect_00", (3, 3))
    return rect


def rectified_projection(cam_calib: Calibration, cam: int) -> np.ndarray:
    """``[3, 4]`` ``P_rect_0<cam>``: rectified camera-0 coordinates -> pixels of camera ``cam``."""
    if cam not in (0, 1, 2, 3):
        raise DataError(f"{cam_calib.path}: camera {cam} does not exist (KITTI has 0..3)")
    return cam_calib.matrix(f"P_rect_0{cam}", (3, 4))


def rectified_image_size(cam_calib: Calibration) -> Tuple[int, int]:
    """``(height, width)`` of the rectified images, from ``S_rect_02`` (stored width, height)."""
    width, height = cam_calib.matrix("S_rect_02", (2,))
    return int(height), int(width)


def velo_to_camera(calib_dir: PathLike, cam: int = 2) -> Tuple[np.ndarray, Tuple[int, int]]:
    """The projection of velodyne points into the rectified image of camera ``cam`` (2 or 3).

    Args:
        calib_dir: a raw date folder holding ``calib_cam_to_cam.txt`` and
            ``calib_velo_to_cam.txt``.
        cam: 2 (left colour) or 3 (right colour).

    Returns:
        ``(P [3, 4] float64, (height, width))`` with ``P = P_rect_0cam @ R_rect_00 @
        velo_to_cam``: homogeneous velodyne points ``[4]`` -> ``(u w, v w, w)``.

    Raises:
        DataError: a file or a key is missing, or a value has the wrong size.
    """
    calib_dir = Path(calib_dir)
    cam_calib = read_calib_file(calib_dir / CAM_TO_CAM)
    velo_calib = read_calib_file(calib_dir / VELO_TO_CAM)
    projection = (rectified_projection(cam_calib, cam) @ rectification_matrix(cam_calib)
                  @ velo_to_cam_matrix(velo_calib))
    return projection, rectified_image_size(cam_calib)


class OdometryCalibration(NamedTuple):
    """One odometry sequence's ``calib.txt``.

    Attributes:
        projections: ``[4, 3, 4]`` ``P0``..``P3``, rectified camera-0 coordinates -> pixels of
            cameras 0 (left grey), 1 (right grey), 2 (left colour), 3 (right colour).
        velo_to_cam: ``[4, 4]`` ``Tr`` padded with ``[0, 0, 0, 1]``: velodyne -> camera 0.
    """

    projections: np.ndarray
    velo_to_cam: np.ndarray


def read_odometry_calibration(path: PathLike) -> OdometryCalibration:
    """Reads an odometry ``calib.txt`` (``P0``..``P3`` and ``Tr``, 12 numbers each)."""
    calib = read_calib_file(path)
    projections = np.stack([calib.matrix(f"P{cam}", (3, 4)) for cam in range(4)])
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :] = calib.matrix("Tr", (3, 4))
    return OdometryCalibration(projections, velo_to_cam)


def read_odometry_poses(path: PathLike) -> np.ndarray:
    """Reads an odometry poses file: one pose a line, 12 numbers, 3x4 row-major.

    Returns:
        ``[N, 4, 4]`` float64 camera-to-world poses (last row ``[0, 0, 0, 1]``).

    Raises:
        DataError: the file is missing or empty, or a line (named by number) does not hold 12
            numbers.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: poses file missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: poses file unreadable ({error})") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = _parse_numbers(line)
        except ValueError:
            row = None
        if row is None or row.size != 12:
            raise DataError(f"{path}:{number}: expected 12 numbers (a 3x4 pose), got {line!r}")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: poses file holds no pose")
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3, :] = np.stack(rows).reshape(-1, 3, 4)
    return poses
