"""KITTI's files of the synthetic world: calibration text, drive folders, poses, split lists and
the reproducible npz of exact depth."""

import io
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from monodepth_tf.synthetic.camera import BASELINE, Intrinsics, kitti_number, yaw_rotation
from monodepth_tf.synthetic.lidar import VELO_TO_CAM_R, VELO_TO_CAM_T

DATE = "2011_09_26"  # the recording day whose calibration (rescaled) the rig uses


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


def write_splits(split_dir: Path, splits: Dict[str, List[Tuple[int, int]]]) -> Dict[str, int]:
    """Writes the three lists (train with both cameras as targets, val and test the left)."""
    split_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, items in splits.items():
        sides = ("l", "r") if name == "train" else ("l",)
        lines = [f"{drive_folder(d)} {f} {side}" for d, f in items for side in sides]
        (split_dir / f"{name}_files.txt").write_text("\n".join(lines) + "\n")
        counts[name] = len(lines)
    return counts
