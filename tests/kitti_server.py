"""Test helpers for bin/download_kitti: a local mirror of KITTI's archives and of the
Monodepth2 release's split lists, built from the real KITTI files in ../shared/kitti (served by
tests/http_server.py's FileServer).

Every drive archive holds the one real frame of ../shared/kitti (its two colour images and its
LiDAR scan) under the drive's own name; every date's calibration archive holds the real
2011_09_26 calibration files under that date's folder.
"""

import shutil
import zipfile
from pathlib import Path
from typing import Dict, Iterable

import cv2
import numpy as np

from monodepth_tf.data import kitti_download as kd
from monodepth_tf.data.standard_splits import LICENSE_NAME, LICENSE_SOURCE

SOURCE_DATE = "2011_09_26"
SOURCE_DRIVE = f"{SOURCE_DATE}_drive_0000_sync"
FRAME = "0000000001"
CALIB_FILES = ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt")
DRIVE_FILES = (("image_02", "png"), ("image_03", "png"), ("velodyne_points", "bin"))


def write_zip(path: Path, members: Dict[str, bytes],
              compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip of ``{name: bytes}`` at ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def source_file(kitti_dir: Path, sub: str, ext: str) -> Path:
    """The real frame's file of ``sub`` (``image_02``, ``velodyne_points``...)."""
    return kitti_dir / "raw" / SOURCE_DATE / SOURCE_DRIVE / sub / "data" / f"{FRAME}.{ext}"


def drive_members(kitti_dir: Path, drive: str) -> Dict[str, bytes]:
    """A drive archive's members in KITTI's layout (``<date>/<drive>_sync/...``): the real
    frame's two images and scan.

    Args:
        drive: the drive folder's name, ``2011_09_26_drive_0001_sync``.
    """
    return {f"{drive[:10]}/{drive}/{sub}/data/{FRAME}.{ext}":
            source_file(kitti_dir, sub, ext).read_bytes() for sub, ext in DRIVE_FILES}


def calib_members(kitti_dir: Path, date: str) -> Dict[str, bytes]:
    """A calibration archive's members: the real calibration files under ``<date>/``."""
    return {f"{date}/{name}": (kitti_dir / "raw" / SOURCE_DATE / name).read_bytes()
            for name in CALIB_FILES}


def depth_png() -> bytes:
    """A small 16-bit depth map (metres x 256), as KITTI depth stores them."""
    depth = (np.arange(12 * 20, dtype=np.uint16).reshape(12, 20) * 37) % 20000
    return cv2.imencode(".png", depth)[1].tobytes()


def depth_member(drive: str) -> str:
    """Where ``data_depth_annotated.zip`` keeps a drive's improved map of the frame."""
    return f"train/{drive}/proj_depth/groundtruth/image_02/{FRAME}.png"


def serve_kitti(root: Path, kitti_dir: Path, drives: Iterable[str],
                depth_drives: Iterable[str] = (),
                compression: int = zipfile.ZIP_DEFLATED) -> None:
    """Writes KITTI's archive tree under ``root`` (a FileServer's root, the address to give
    ``$MONODEPTH_KITTI_URL``): ``raw_data/<date>_calib.zip`` for every date of ``drives``,
    ``raw_data/<drive>/<drive>_sync.zip`` and, when ``depth_drives`` names some,
    ``data_depth_annotated.zip`` with one improved map of each.

    Args:
        drives, depth_drives: drive folder names (``2011_09_26_drive_0001_sync``).
        compression: the zips' (stored zips are quicker to build for many drives).
    """
    drives = list(drives)
    raw = root / "raw_data"
    for date in sorted({drive[:10] for drive in drives}):
        write_zip(raw / f"{date}_calib.zip", calib_members(kitti_dir, date), compression)
    for drive in drives:
        write_zip(raw / drive[:-5] / f"{drive}.zip", drive_members(kitti_dir, drive),
                  compression)
    depth = {depth_member(drive): depth_png() for drive in depth_drives}
    if depth:
        write_zip(root / kd.DEPTH_ARCHIVE, depth, compression)


def serve_splits(root: Path, kitti_dir: Path) -> None:
    """Writes the Monodepth2 release's tree under ``root`` (the address to give
    ``$MONODEPTH_SPLITS_URL``): ``splits/<split>/...`` and ``LICENSE``."""
    shutil.copytree(kitti_dir / "splits", root / "splits", dirs_exist_ok=True)
    shutil.copy(kitti_dir / "splits" / LICENSE_NAME, root / LICENSE_SOURCE)
