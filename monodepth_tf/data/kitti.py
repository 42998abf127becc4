"""KITTI on disk: the raw and odometry folder layouts (the image readers are in
:mod:`monodepth_tf.data.images`, split lists in :mod:`monodepth_tf.data.splits`).

Raw release (``KittiRawLayout``; ``<folder>`` is ``<date>/<date>_drive_<nnnn>_sync``)::

    <root>/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    <root>/<folder>/image_02/data/<10 digits>.jpg|png          left colour camera (side "l")
    <root>/<folder>/image_03/data/<10 digits>.jpg|png          right colour camera (side "r")
    <root>/<folder>/velodyne_points/data/<10 digits>.bin       LiDAR scan
    <root>/<folder>/proj_depth/groundtruth/image_0{2,3}/<10 digits>.png
                                        KITTI depth's improved ground truth (eigen_benchmark)

The last line is the original Monodepth2's convention, kept here: KITTI depth ships its
annotated maps as ``<train|val>/<drive folder>/proj_depth/groundtruth/image_0x/...`` (no date
level); copy or link each ``<drive folder>/proj_depth`` into the raw drive folder of the same
name (``bin/download_kitti --depth_annotated`` unpacks them there).

Odometry release (``KittiOdometryLayout``)::

    <root>/sequences/<NN>/image_2|image_3/<6 digits>.png       colour, left | right
    <root>/sequences/<NN>/image_0|image_1/<6 digits>.png       grayscale, left | right
    <root>/sequences/<NN>/calib.txt
    <root>/poses/<NN>.txt

Frames of a sample are named as in :mod:`monodepth_tf.data.frames`.
"""

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

from monodepth_tf.data.errors import DataError, PathLike
from monodepth_tf.data.frames import OTHER_SIDE, SIDE_CAMERA, STEREO, FrameId, frame_key
from monodepth_tf.data.layout import KITTI_CAMERA, Camera, Where
from monodepth_tf.data.splits import SplitEntry



FULL_HEIGHT, FULL_WIDTH = 375, 1242


IMAGE_EXTENSIONS = ("jpg", "png")




def _frame_name(where: Union[str, Path], frame_index: int, digits: int) -> str:
    """A frame's zero-padded file stem; a negative index (an offset before the drive's first
    frame) raises DataError naming ``where``, the drive folder or sequence."""
    if frame_index < 0:
        raise DataError(f"{where}: frame index {frame_index} is before the first frame")
    return f"{frame_index:0{digits}d}"


def _check_ext(ext: str, allowed: Sequence[str]) -> str:
    if ext not in allowed:
        raise DataError(f"image extension {ext!r} is not one of {', '.join(allowed)}")
    return ext


def _resolve(where: Where, frame_index: Optional[int],
             side: Optional[str] = None) -> Tuple[str, int, str]:
    """``(folder, frame_index, side)`` from an entry (whose values fill what is not given) or
    a folder (then frame_index is required; side defaults to ``"l"``)."""
    if isinstance(where, SplitEntry):
        folder, side = where.folder, side or where.side
        frame_index = where.frame_index if frame_index is None else frame_index
    elif frame_index is None:
        raise TypeError("a frame index is needed with a folder name")
    else:
        folder, side = str(where), side or "l"
    if side not in SIDE_CAMERA:
        raise DataError(f"{folder}: side {side!r} is not 'l' or 'r'")
    return folder, int(frame_index), side


class KittiRawLayout:
    """Paths of the KITTI raw release (see the module docstring).

    Args:
        data_path: the root holding the date folders.
        ext: image extension: ``jpg`` (the original's converted copies, its default) or
            ``png`` (KITTI's own files; the original's ``--png``).
    """

    has_lidar = True  # velodyne scans beside the images (folder datasets have none)

    def __init__(self, data_path: PathLike, ext: str = "jpg"):
        self.root = Path(data_path)
        self.ext = _check_ext(ext, IMAGE_EXTENSIONS)

    def drive_dir(self, where: Where) -> Path:
        """``<root>/<folder>`` of an entry or folder."""
        return self.root / (where.folder if isinstance(where, SplitEntry) else where)

    def calib_dir(self, where: Where) -> Path:
        """``<root>/<date>``: the date folder (first part of the drive folder) with the
        calibration files."""
        folder = where.folder if isinstance(where, SplitEntry) else str(where)
        return self.root / Path(folder).parts[0]

    def image_path(self, where: Where, frame_index: Optional[int] = None,
                   side: Optional[str] = None) -> Path:
        """The image of one frame and camera.

        Args:
            where: a SplitEntry, or a drive folder.
            frame_index: the frame (default: the entry's).
            side: ``"l"`` -> ``image_02``, ``"r"`` -> ``image_03`` (default: the entry's, or
                ``"l"`` with a folder).
        """
        folder, frame_index, side = _resolve(where, frame_index, side)
        return (self.root / folder / f"image_0{SIDE_CAMERA[side]}" / "data"
                / f"{_frame_name(self.root / folder, frame_index, 10)}.{self.ext}")

    def frame_path(self, entry: SplitEntry, frame_id: FrameId) -> Path:
        """The image of a sample's frame: offset ``k`` -> frame ``index + k``, same camera;
        ``"s"`` -> the same frame from the other camera."""
        key = frame_key(frame_id)
        if key == STEREO:
            return self.image_path(entry, entry.frame_index, OTHER_SIDE[entry.side])
        return self.image_path(entry, entry.frame_index + int(key), entry.side)

    def sample_paths(self, entry: SplitEntry, frame_ids: Sequence[FrameId]) -> Dict[str, Path]:
        """``{frame key: image path}`` of every frame a sample needs (keys as in
        :func:`frame_key`)."""
        return {frame_key(frame_id): self.frame_path(entry, frame_id) for frame_id in frame_ids}

    def velodyne_path(self, where: Where, frame_index: Optional[int] = None) -> Path:
        """The LiDAR scan of one frame (an entry's frame by default)."""
        folder, frame_index, _ = _resolve(where, frame_index)
        return (self.root / folder / "velodyne_points" / "data"
                / f"{_frame_name(self.root / folder, frame_index, 10)}.bin")

    def depth_png_path(self, where: Where, frame_index: Optional[int] = None,
                       side: Optional[str] = None) -> Path:
        """KITTI depth's improved ground truth of one frame and camera, in the original's
        convention ``<root>/<folder>/proj_depth/groundtruth/image_0x/<10 digits>.png``."""
        folder, frame_index, side = _resolve(where, frame_index, side)
        return (self.root / folder / "proj_depth" / "groundtruth"
                / f"image_0{SIDE_CAMERA[side]}"
                / f"{_frame_name(self.root / folder, frame_index, 10)}.png")

    def camera(self, entry: SplitEntry) -> Camera:
        """KITTI's normalized intrinsics, for every sample (as the original uses them)."""
        return KITTI_CAMERA


class KittiOdometryLayout:
    """Paths of the KITTI odometry release (see the module docstring).

    Args:
        data_path: the root holding ``sequences/`` and ``poses/``.
        ext: image extension (``png`` as released, or ``jpg`` for converted copies).
        grayscale: sides map to the grayscale cameras (``l`` -> ``image_0``, ``r`` ->
            ``image_1``) instead of the colour ones (``image_2``, ``image_3``).
    """

    def __init__(self, data_path: PathLike, ext: str = "png", grayscale: bool = False):
        self.root = Path(data_path)
        self.ext = _check_ext(ext, IMAGE_EXTENSIONS)
        self.grayscale = grayscale

    def sequence_dir(self, sequence: Union[int, str]) -> Path:
        """``<root>/sequences/<NN>`` (``sequence`` as an int or as a split list writes it)."""
        return self.root / "sequences" / _sequence_name(sequence)

    def image_path(self, sequence: Union[int, str], frame_index: int, side: str = "l",
                   image_folder: Optional[int] = None) -> Path:
        """The image of one frame.

        Args:
            sequence: the sequence number.
            frame_index: the frame.
            side: ``"l"`` or ``"r"``, mapped to a camera by ``grayscale``.
            image_folder: 0..3, overrides the side: ``image_<image_folder>``.
        """
        if image_folder is None:
            if side not in SIDE_CAMERA:
                raise DataError(f"sequence {sequence}: side {side!r} is not 'l' or 'r'")
            image_folder = SIDE_CAMERA[side] - (2 if self.grayscale else 0)
        if image_folder not in (0, 1, 2, 3):
            raise DataError(f"sequence {sequence}: image folder {image_folder} is not 0..3")
        name = _frame_name(f"sequence {sequence}", frame_index, 6)
        return self.sequence_dir(sequence) / f"image_{image_folder}" / f"{name}.{self.ext}"

    def calib_path(self, sequence: Union[int, str]) -> Path:
        """``<root>/sequences/<NN>/calib.txt``."""
        return self.sequence_dir(sequence) / "calib.txt"

    def poses_path(self, sequence: Union[int, str]) -> Path:
        """``<root>/poses/<NN>.txt``."""
        return self.root / "poses" / f"{_sequence_name(sequence)}.txt"


def _sequence_name(sequence: Union[int, str]) -> str:
    try:
        return f"{int(sequence):02d}"
    except ValueError:
        raise DataError(f"odometry sequence {sequence!r} is not a number") from None
