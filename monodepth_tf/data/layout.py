"""What the pipeline, the checks and validation ask of a dataset on disk: the ``Layout``
interface, and the ``Camera`` each sample is seen with.

Two layouts implement it: :class:`monodepth_tf.data.kitti.KittiRawLayout` (KITTI raw, with
LiDAR) and the folder dataset's ``FolderLayout`` (your own frames and videos, no LiDAR).
TensorFlow-free.
"""

from pathlib import Path
from typing import Dict, NamedTuple, Optional, Protocol, Sequence, Union

import numpy as np

from monodepth_tf.data.frames import FrameId
from monodepth_tf.data.splits import SplitEntry

# KITTI's intrinsics normalized by the image size (the original uses them for every image).
NORMALIZED_K = np.array([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
                        dtype=np.float32)
STEREO_BASELINE = 0.1
# Metric depth of a stereo-trained model: KITTI's 0.54 m baseline over the STEREO_BASELINE it
# trains with, so depth = STEREO_SCALE_FACTOR / scaled disparity is in metres (as the original).
STEREO_SCALE_FACTOR = 5.4


class Camera(NamedTuple):
    """What the pipeline needs to know of a sample's camera.

    Attributes:
        normalized_K: ``[4, 4]`` float32 intrinsics with row 0 divided by the image width and
            row 1 by its height (as :data:`NORMALIZED_K`).
        flip: horizontal flips are allowed (the principal point is near the centre).
        baseline: the stereo baseline of ``stereo_T``.
    """

    normalized_K: np.ndarray
    flip: bool = True
    baseline: float = STEREO_BASELINE


KITTI_CAMERA = Camera(NORMALIZED_K)

Where = Union[SplitEntry, str]  # a split entry, or a drive (sequence) folder


class Layout(Protocol):
    """Where a dataset's files are, and the camera of each sample.

    Attributes:
        root: the dataset's folder (``--data_path``).
        has_lidar: whether LiDAR scans lie beside the images (then the layout is also a
            :class:`LidarLayout`).
    """

    root: Path
    has_lidar: bool

    def drive_dir(self, where: Where) -> Path:
        """The folder of an entry's drive (sequence)."""

    def calib_dir(self, where: Where) -> Path:
        """The folder holding the calibration files of an entry's drive."""

    def image_path(self, where: Where, frame_index: Optional[int] = None,
                   side: Optional[str] = None) -> Path:
        """The image of one frame and side (an entry's own by default)."""

    def sample_paths(self, entry: SplitEntry, frame_ids: Sequence[FrameId]) -> Dict[str, Path]:
        """``{frame key: image path}`` of every frame a sample needs."""

    def camera(self, entry: SplitEntry) -> Camera:
        """The camera the sample's frames were taken with."""


class LidarLayout(Layout, Protocol):
    """A layout with LiDAR scans (``has_lidar`` True): validation's depth ground truth."""

    def velodyne_path(self, where: Where, frame_index: Optional[int] = None) -> Path:
        """The LiDAR scan of one frame (an entry's frame by default)."""
