"""Reading a sequence's camera: ``intrinsics.json`` (fx, fy, cx, cy in pixels for images of
width x height; optionally baseline and fps) or a KITTI ``calib_cam_to_cam.txt``."""

import json
from pathlib import Path
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np

from monodepth_tf.data.calibration import read_calib_file
from monodepth_tf.data.errors import DataError

PathLike = Union[str, Path]
INTRINSICS_FILE = "intrinsics.json"
KITTI_CALIB_FILE = "calib_cam_to_cam.txt"
REQUIRED_FIELDS = ("fx", "fy", "cx", "cy", "width", "height")
FLIP_TOLERANCE = 0.05


class CameraFile(NamedTuple):
    """One camera description as read (pixels, for images of ``width`` x ``height``)."""

    path: Path
    fx: float
    fy: float
    cx: float
    cy: float
    width: float
    height: float
    baseline: Optional[float] = None
    fps: Optional[float] = None

    def normalized_K(self) -> np.ndarray:
        """``[4, 4]`` float32: row 0 divided by the width, row 1 by the height."""
        K = np.eye(4)
        K[0, 0], K[0, 2] = self.fx / self.width, self.cx / self.width
        K[1, 1], K[1, 2] = self.fy / self.height, self.cy / self.height
        return K.astype(np.float32)

    def centred(self) -> bool:
        return (abs(self.cx / self.width - 0.5) <= FLIP_TOLERANCE
                and abs(self.cy / self.height - 0.5) <= FLIP_TOLERANCE)


def read_intrinsics(path: PathLike) -> CameraFile:
    """Reads ``intrinsics.json`` (see the module docstring); DataError naming the file and
    the field when one is missing or not a positive number (cx, cy: a number)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable ({error})") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(values, dict):
        raise DataError(f"{path}: expected a JSON object with {', '.join(REQUIRED_FIELDS)}")
    missing = [name for name in REQUIRED_FIELDS if name not in values]
    if missing:
        raise DataError(f"{path}: missing field(s) {', '.join(missing)} (needs "
                        f"{', '.join(REQUIRED_FIELDS)} in pixels)")
    numbers = {}
    for name in REQUIRED_FIELDS + ("baseline", "fps"):
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"{path}: field {name} is {value!r}, not a number")
        if name not in ("cx", "cy") and not value > 0:
            raise DataError(f"{path}: field {name} is {value}, it must be positive")
        numbers[name] = float(value)
    return CameraFile(path, **numbers)


def read_kitti_calib(path: PathLike) -> CameraFile:
    """The left colour camera of a KITTI ``calib_cam_to_cam.txt``: ``P_rect_02`` at the size
    ``S_rect_02``; baseline from ``P_rect_03``'s offset when present."""
    calib = read_calib_file(path)
    P2 = calib.matrix("P_rect_02", (3, 4))
    width, height = calib.matrix("S_rect_02", (2,))
    baseline = None
    if "P_rect_03" in calib:
        P3 = calib.matrix("P_rect_03", (3, 4))
        baseline = float(P2[0, 3] / P2[0, 0] - P3[0, 3] / P3[0, 0])
    return CameraFile(Path(path), float(P2[0, 0]), float(P2[1, 1]), float(P2[0, 2]),
                      float(P2[1, 2]), float(width), float(height),
                      baseline if baseline and baseline > 0 else None)


def find_camera(candidates: Sequence[Path]) -> Optional[CameraFile]:
    """The first candidate that exists: ``.json`` files as intrinsics.json, others as KITTI
    calibration files."""
    for path in candidates:
        if path.is_file():
            return read_intrinsics(path) if path.suffix == ".json" else read_kitti_calib(path)
    return None
