"""KITTI on disk: split lists, the raw and odometry folder layouts, and image files.

Raw layout::

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <root>/<date>/<date>_drive_<nnnn>_sync/image_02/data/<10 digits>.jpg|png   (left colour)
    <root>/<date>/<date>_drive_<nnnn>_sync/image_03/data/<10 digits>.jpg|png   (right colour)
    <root>/<date>/<date>_drive_<nnnn>_sync/velodyne_points/data/<10 digits>.bin

Odometry layout::

    <root>/sequences/<NN>/image_2|3/<6 digits>.png, <root>/sequences/<NN>/calib.txt,
    <root>/poses/<NN>.txt

Split lines are ``<folder> <frame index> <l|r>`` (odometry: ``<sequence> <frame> l``).
"""

from pathlib import Path
from typing import List, NamedTuple, Optional

import cv2
import numpy as np

import monodepth_tf
from monodepth_tf.data.errors import DataError

SIDE_CAMERA = {"l": 2, "r": 3}
OTHER_SIDE = {"l": "r", "r": "l"}
FULL_HEIGHT, FULL_WIDTH = 375, 1242


def default_split_dir() -> Path:
    """The project's ``splits/`` folder (where users put the standard lists)."""
    return Path(monodepth_tf.__file__).resolve().parents[1] / "splits"


class SplitEntry(NamedTuple):
    """One line of a split file: a drive folder (or odometry sequence), a frame, a side."""

    folder: str
    frame_index: int
    side: str


def read_split_file(path) -> List[SplitEntry]:
    """Parses a split list; a malformed line raises DataError naming file and line number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split file {path} does not exist (see splits/README.md for where the "
                        "standard lists come from, or pass --split_dir)")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        side = parts[2] if len(parts) > 2 else "l"
        try:
            if len(parts) not in (2, 3) or side not in SIDE_CAMERA:
                raise ValueError
            entries.append(SplitEntry(parts[0], int(parts[1]), side))
        except ValueError:
            raise DataError(f"{path}:{number}: expected '<folder> <frame index> <l|r>', "
                            f"got {line!r}") from None
    if not entries:
        raise DataError(f"split file {path} lists no samples")
    return entries


def read_split(split_dir, split: str, name: str) -> List[SplitEntry]:
    """``<split_dir>/<split>/<name>_files.txt`` (name: train, val or test)."""
    return read_split_file(Path(split_dir) / split / f"{name}_files.txt")


class KittiRawLayout:
    """Paths of the KITTI raw release.

    Args:
        data_path: the root holding the date folders.
        ext: image extension, ``jpg`` (the original's converted copies) or ``png``.
    """

    def __init__(self, data_path, ext: str = "jpg"):
        self.root = Path(data_path)
        self.ext = ext

    def image_path(self, folder: str, frame_index: int, side: str) -> Path:
        return (self.root / folder / f"image_0{SIDE_CAMERA[side]}" / "data"
                / f"{frame_index:010d}.{self.ext}")

    def velodyne_path(self, folder: str, frame_index: int) -> Path:
        return self.root / folder / "velodyne_points" / "data" / f"{frame_index:010d}.bin"

    def calib_dir(self, folder: str) -> Path:
        return self.root / folder.split("/")[0]

    def depth_png_path(self, folder: str, frame_index: int, side: str) -> Path:
        """KITTI depth's improved ground truth, stored beside the raw drive as
        ``<drive>/proj_depth/groundtruth/image_0x/<10 digits>.png`` (the original's layout)."""
        return (self.root / folder / "proj_depth" / "groundtruth"
                / f"image_0{SIDE_CAMERA[side]}" / f"{frame_index:010d}.png")


class KittiOdometryLayout:
    """Paths of the KITTI odometry release (``image_folder`` 2/3 colour, 0/1 grayscale)."""

    def __init__(self, data_path, ext: str = "png"):
        self.root = Path(data_path)
        self.ext = ext

    def image_path(self, sequence, frame_index: int, side: str = "l",
                   image_folder: Optional[int] = None) -> Path:
        folder = image_folder if image_folder is not None else SIDE_CAMERA[side]
        return (self.root / "sequences" / f"{int(sequence):02d}" / f"image_{folder}"
                / f"{frame_index:06d}.{self.ext}")

    def calib_path(self, sequence) -> Path:
        return self.root / "sequences" / f"{int(sequence):02d}" / "calib.txt"

    def poses_path(self, sequence) -> Path:
        return self.root / "poses" / f"{int(sequence):02d}.txt"


def load_rgb(path) -> np.ndarray:
    """An image file as ``[H, W, 3]`` uint8 RGB (grayscale images get three equal channels).

    Raises:
        DataError: the file is missing, truncated or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image {path} does not exist")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(f"image {path} is unreadable (truncated or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_depth_png(path) -> np.ndarray:
    """KITTI depth's 16-bit PNG as float32 metres (value / 256; 0 where there is no depth)."""
    path = Path(path)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        raise DataError(f"depth map {path} is missing or not a 16-bit single-channel PNG")
    return raw.astype(np.float32) / 256.0
