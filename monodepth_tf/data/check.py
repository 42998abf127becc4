"""Checking a dataset before training: every file a split needs, present and whole.

Problems are plain lines ``<file>: <what is wrong> (needed by <split file> line <n>)``; all of
them are collected, so one run shows everything to fix. Files are checked cheaply, without
decoding: an image must start with a PNG or JPEG signature and end with its end marker (a PNG's
IEND chunk, a JPEG's end-of-image marker), a LiDAR scan must be a positive multiple of 16 bytes,
so tens of thousands of samples take seconds; ``decode=True`` also decodes every image, for
damage inside a file that those checks cannot see. The val and test lists' LiDAR scans are
checked by default (they are the ground truth that validation and evaluation score against).
Each file is reported once, for the first line that needs it; a missing drive folder is reported
once instead of every file in it.
"""

import re
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Set, Union


from monodepth_tf.data.calibration import CAM_TO_CAM, VELO_TO_CAM, read_calib_file
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.frames import STEREO, FrameId, frame_key
from monodepth_tf.data.images import TAIL_BYTES, encoded_image_problem
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.layout import Layout
from monodepth_tf.data.splits import SplitEntry, read_split

PathLike = Union[str, Path]
MAX_LISTED = 50  # problems listed in one DataError; the rest are counted
# the lists whose samples need LiDAR scans unless told otherwise: their ground truth
GROUND_TRUTH_LISTS = ("val", "test")

# The calibration keys (and their sizes) that the ground truth and the layouts use.
REQUIRED_CALIBRATION = {
    CAM_TO_CAM: {"R_rect_00": 9, "P_rect_02": 12, "P_rect_03": 12, "S_rect_02": 2},
    VELO_TO_CAM: {"R": 9, "T": 3},
}


def image_problem(path: Path) -> str:
    """What is wrong with an image file ('' when it looks whole): missing, unreadable, empty,
    truncated, or not a PNG/JPEG."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            head = file.read(8)
            file.seek(max(0, size - TAIL_BYTES))
            tail = file.read()
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    if size == 0:
        return "empty file"
    return encoded_image_problem(head, tail)


def decoded_image_problem(path: Path) -> str:
    """What decoding finds wrong with an image file that looks whole ('' when it decodes):
    decoded by the training pipeline's decoder (``tf.io.decode_image``), which refuses some
    damage that other decoders pass over with a warning."""
    import tensorflow as tf  # only here: the other checks need no TensorFlow

    try:
        tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        reason = re.sub(r"^\{\{.*?\}\}\s*|\s*\[Op:.*$", "", error.message.splitlines()[-1])
        return f"damaged image (it does not decode: {reason.strip()})"
    return ""


def velodyne_problem(path: Path) -> str:
    """What is wrong with a LiDAR scan file ('' when its size fits whole points)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    if size == 0 or size % 16:
        return f"truncated LiDAR scan ({size} bytes is not a positive multiple of 16)"
    return ""


def calibration_problems(calib_dir: Path) -> List[str]:
    """Missing or unreadable calibration files of a raw date folder, and missing or
    wrong-sized keys, one line each."""
    problems = []
    for name, keys in REQUIRED_CALIBRATION.items():
        try:
            calib = read_calib_file(Path(calib_dir) / name)
            for key, size in keys.items():
                if key not in calib:
                    problems.append(f"{calib.path}: calibration key {key!r} is missing")
                elif calib[key].size != size:
                    problems.append(f"{calib.path}: calibration key {key!r} has "
                                    f"{calib[key].size} numbers, expected {size}")
        except DataError as error:
            problems.append(str(error))
    return problems


def _entry_files(layout: Layout, entry: SplitEntry, frame_ids: Sequence[FrameId],
                 need_velodyne: bool) -> List[Path]:
    """The files one sample needs (DataError for an impossible frame, e.g. index -1)."""
    paths = list(layout.sample_paths(entry, frame_ids).values())
    if need_velodyne:
        paths.append(layout.velodyne_path(entry))
    return paths


def split_problems(layout: Layout, entries: Iterable[SplitEntry],
                   frame_ids: Sequence[FrameId], need_velodyne: bool = False,
                   source: str = "split", need_calibration: Optional[bool] = None,
                   decode: bool = False) -> List[str]:
    """Every problem with the files that these split entries need.

    Args:
        layout: where the files are.
        entries: the samples (line ``n`` of ``source`` is ``entries[n - 1]``).
        frame_ids: the frames each sample needs: offsets (0, -1, 1, ...) and/or ``"s"``.
        need_velodyne: also each sample's LiDAR scan.
        source: the split file, named in each problem.
        need_calibration: also the calibration of every date used (default: need_velodyne).
        decode: also decode every image (slow: about as long as an epoch's decoding).

    Returns:
        One line per problem, ``<path>: <what> (needed by <source> line <n>)``; empty if none.
    """
    if need_calibration is None:
        need_calibration = need_velodyne
    return _entries_problems(layout, entries, frame_ids, need_velodyne, need_calibration, source,
                             seen=set(), decode=decode)


def _entries_problems(layout: Layout, entries: Iterable[SplitEntry],
                      frame_ids: Sequence[FrameId], need_velodyne: bool, need_calibration: bool,
                      source: str, seen: Set[Path], decode: bool = False) -> List[str]:
    """:func:`split_problems`, skipping (and adding to ``seen``) what was already checked."""
    problems: List[str] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{source} line {number}"
        drive = layout.drive_dir(entry)
        if drive in seen:
            continue
        if not drive.is_dir():
            seen.add(drive)
            problems.append(f"{drive}: drive folder missing (named by {where})")
            continue
        calib_dir = layout.calib_dir(entry)
        if need_calibration and calib_dir not in seen:
            seen.add(calib_dir)
            problems += [f"{line} (needed by {where})" for line in calibration_problems(calib_dir)]
        try:
            paths = _entry_files(layout, entry, frame_ids, need_velodyne)
        except DataError as error:
            problems.append(f"{error} (needed by {where})")
            continue
        for path in paths:
            if path in seen:
                continue
            seen.add(path)
            if path.suffix == ".bin":
                issue = velodyne_problem(path)
            else:
                issue = image_problem(path)
                if decode and not issue:
                    issue = decoded_image_problem(path)
            if issue:
                problems.append(f"{path}: {issue} (needed by {where})")
    return problems


def check_split(data_path: PathLike, split: str, split_dir: PathLike,
                frame_ids: Sequence[FrameId] = (0, -1, 1), use_stereo: bool = False,
                ext: str = "jpg", names: Sequence[str] = ("train", "val"),
                lidar: Optional[bool] = None, decode: bool = False) -> List[str]:
    """Every problem with the data that the lists ``names`` of a split need.

    Checked: each list ``<split_dir>/<split>/<name>_files.txt`` (missing, malformed line), the
    drive folders it names, every image of every sample (frames ``frame_ids``, plus ``"s"``
    with ``use_stereo``), the calibration of every date it uses (every KITTI raw date ships
    one; the ground truth needs it: its keys and their sizes are parsed), and the LiDAR scans
    that ``lidar`` asks for.

    Args:
        data_path: the KITTI raw root.
        split: the split folder's name (``eigen_zhou``, ...).
        split_dir: the folder holding the split folders.
        frame_ids: frames each sample needs.
        use_stereo: samples also need the other camera's image.
        ext: image extension, ``jpg`` or ``png``.
        names: which lists of the split to check.
        lidar: every sample needs its LiDAR scan (True), none does (False), or the samples of
            the GROUND_TRUTH_LISTS (val, test) do (None, the default).
        decode: also decode every image.

    Returns:
        One line per problem, each naming the file (or split line) and what is wrong; files
        name the list line that needs them as ``<name>_files.txt line <n>``.
    """
    frame_ids = [frame_key(frame_id) for frame_id in frame_ids]
    if use_stereo and STEREO not in frame_ids:
        frame_ids.append(STEREO)
    layout = KittiRawLayout(data_path, ext)
    problems: List[str] = []
    seen: Set[Path] = set()  # a file needed by several lists is reported for the first
    for name in names:
        try:
            entries = read_split(split_dir, split, name)
        except DataError as error:
            problems.append(str(error))
            continue
        need_velodyne = name in GROUND_TRUTH_LISTS if lidar is None else lidar
        problems += _entries_problems(layout, entries, frame_ids, need_velodyne, True,
                                      f"{name}_files.txt", seen, decode)
    return problems


def raise_on_problems(problems: Sequence[str], what: str) -> None:
    """Raises one DataError listing every problem (the first ``MAX_LISTED``, then a count);
    does nothing when there is none. Training calls this before it starts."""
    if not problems:
        return
    listed = "\n  ".join(problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    tail = f"\n  ... and {more} more" if more > 0 else ""
    raise DataError(f"{what}: {len(problems)} problem(s) with the data:\n  {listed}{tail}")


def require_split(data_path: PathLike, split: str, split_dir: PathLike,
                  frame_ids: Sequence[FrameId] = (0, -1, 1), use_stereo: bool = False,
                  ext: str = "jpg", names: Sequence[str] = ("train", "val"),
                  lidar: Optional[bool] = None, decode: bool = False) -> int:
    """:func:`check_split`, raising one DataError that lists every problem.

    Returns:
        The number of samples checked (all lists together) when there is no problem.
    """
    problems = check_split(data_path, split, split_dir, frame_ids, use_stereo, ext, names, lidar,
                           decode)
    raise_on_problems(problems, f"split {split} ({split_dir}) on {data_path}")
    return sum(len(read_split(split_dir, split, name)) for name in names)
