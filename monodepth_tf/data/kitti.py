"""KITTI on disk: split lists, the raw and odometry folder layouts, and image files.

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

Split lists (``<split_dir>/<split>/<name>_files.txt``) hold one sample a line:
``<folder> <frame index> <l|r>`` (odometry: ``<sequence> <frame> l``; the benchmark's test
list: ``image <index>``, no side, read as ``l``).

Frames of a sample are named as in :mod:`monodepth_tf.batch`: an integer offset from the
sample's frame on the same camera (0, -1, +1, any +-k), or ``"s"``, the other camera of the
stereo pair at the same instant.
"""

import os
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

import monodepth_tf
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.standard_splits import missing_split_hint

PathLike = Union[str, Path]
FrameId = Union[int, str]

SIDE_CAMERA = {"l": 2, "r": 3}
OTHER_SIDE = {"l": "r", "r": "l"}
STEREO = "s"  # the same key as monodepth_tf.batch.STEREO (that module needs TensorFlow)
FULL_HEIGHT, FULL_WIDTH = 375, 1242
IMAGE_EXTENSIONS = ("jpg", "png")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END_CHUNK = b"IEND"
JPEG_START, JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"
TAIL_BYTES = 32  # where the end marker must be found (a PNG's IEND chunk is the last 12)


SPLIT_DIR_VARIABLE = "MONODEPTH_SPLIT_DIR"


def default_split_dir() -> Path:
    """The default ``--split_dir``: ``$MONODEPTH_SPLIT_DIR`` when set (where a user keeps the
    standard split lists once); else, run from a source checkout (or an editable install), the
    repository's top-level ``splits/`` folder; else (after ``pip install .``, where the package
    sits in site-packages without the repository) the per-user folder
    ``$XDG_DATA_HOME/monodepth_tf/splits`` (``~/.local/share/monodepth_tf/splits``)."""
    if os.environ.get(SPLIT_DIR_VARIABLE):
        return Path(os.environ[SPLIT_DIR_VARIABLE]).expanduser()
    checkout = Path(monodepth_tf.__file__).resolve().parents[1]
    if (checkout / "setup.py").is_file() and (checkout / "splits").is_dir():
        return checkout / "splits"
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home).expanduser() / "monodepth_tf" / "splits"


class SplitEntry(NamedTuple):
    """One line of a split list.

    Attributes:
        folder: the drive folder relative to the data root (``2011_09_26/2011_09_26_drive_0001
            _sync``), or an odometry sequence number as written (``"9"``).
        frame_index: the frame number.
        side: ``"l"`` (camera 2) or ``"r"`` (camera 3).
    """

    folder: str
    frame_index: int
    side: str


Where = Union[SplitEntry, str]  # a split entry, or a drive folder such as "<date>/<drive>"


def parse_split_line(line: str) -> SplitEntry:
    """``"<folder> <frame index> [l|r]"`` -> SplitEntry (ValueError when malformed)."""
    parts = line.split()
    if len(parts) not in (2, 3):
        raise ValueError(f"{len(parts)} fields")
    side = parts[2] if len(parts) == 3 else "l"
    if side not in SIDE_CAMERA:
        raise ValueError(f"side {side!r}")
    frame_index = int(parts[1])
    if frame_index < 0:
        raise ValueError("negative frame index")
    return SplitEntry(parts[0], frame_index, side)


def read_split_file(path: PathLike) -> List[SplitEntry]:
    """Reads one split list (blank lines are skipped).

    Raises:
        DataError: the file is missing or lists nothing, or a line (named as
            ``<file>:<line number>``) is malformed.
    """
    path = Path(path)
    if not path.is_file():
        hint = missing_split_hint(path.parent.name, path.parent.parent)
        raise DataError(f"split file {path} does not exist ({hint}; or pass --split_dir to "
                        "use another folder)")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"split file {path} is unreadable ({error})") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entries.append(parse_split_line(line))
        except ValueError as error:
            raise DataError(f"{path}:{number}: expected '<folder> <frame index> <l|r>', got "
                            f"{line!r} ({error})") from None
    if not entries:
        raise DataError(f"split file {path} lists no samples")
    return entries


def read_split(split_dir: PathLike, split: str, name: str) -> List[SplitEntry]:
    """Reads ``<split_dir>/<split>/<name>_files.txt`` (``name``: ``train``, ``val``, ``test``)."""
    return read_split_file(Path(split_dir) / split / f"{name}_files.txt")


def frame_key(frame_id: FrameId) -> str:
    """The key of a frame id: ``0 -> "0"``, ``-1 -> "-1"``, ``"1" -> "1"``, ``"s" -> "s"``."""
    if frame_id == STEREO:
        return STEREO
    try:
        return str(int(frame_id))
    except (TypeError, ValueError):
        raise DataError(f"frame id {frame_id!r} is neither an integer offset nor 's'") from None


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


def encoded_image_problem(head: bytes, tail: bytes) -> str:
    """What is wrong with an encoded PNG or JPEG, judged from its first 8 and last
    ``TAIL_BYTES`` bytes ('' when it starts and ends as a whole file does)."""
    if head.startswith(PNG_SIGNATURE):
        return "" if PNG_END_CHUNK in tail else "truncated PNG (no IEND chunk at its end)"
    if head.startswith(JPEG_START):
        return "" if JPEG_END in tail else "truncated JPEG (no end-of-image marker)"
    return "not a PNG or JPEG image"


def _read_image_bytes(path: Path, what: str) -> np.ndarray:
    """The bytes of an image file as uint8 ``[n]``; DataError when missing or unreadable."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{what} {path} does not exist") from None
    except (OSError, ValueError) as error:
        raise DataError(f"{what} {path} is unreadable ({error})") from None
    if data.size == 0:
        raise DataError(f"{what} {path} is unreadable (empty file)")
    problem = encoded_image_problem(data[:8].tobytes(), data[-TAIL_BYTES:].tobytes())
    if problem.startswith("truncated"):
        raise DataError(f"{what} {path} is unreadable ({problem})")
    return data


def load_rgb(path: PathLike) -> np.ndarray:
    """Decodes an image file (PNG, JPEG, anything OpenCV reads).

    Returns:
        ``[H, W, 3]`` uint8 RGB; a grayscale file becomes three equal channels.

    Raises:
        DataError: the file is missing, unreadable, truncated or not an image.
    """
    path = Path(path)
    data = _read_image_bytes(path, "image")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"image {path} is unreadable (corrupt, or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_depth_png(path: PathLike) -> np.ndarray:
    """Decodes a KITTI depth map: a 16-bit single-channel PNG holding metres x 256.

    Returns:
        ``[H, W]`` float32 metres, 0 where there is no ground truth.

    Raises:
        DataError: the file is missing, unreadable, truncated, or not a 16-bit grey image.
    """
    path = Path(path)
    data = _read_image_bytes(path, "depth map")
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise DataError(f"depth map {path} is unreadable (corrupt, or not an image)")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        channels = 1 if raw.ndim == 2 else raw.shape[2]
        raise DataError(f"depth map {path} is {raw.dtype} with {channels} channel(s), expected "
                        "a 16-bit single-channel PNG")
    return raw.astype(np.float32) / 256.0
