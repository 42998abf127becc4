"""Checking a dataset before training: every file a split needs, present and whole.

Images are checked cheaply (their signature and end marker: a PNG ends with an IEND chunk, a
JPEG with an EOI marker), so a split of tens of thousands of samples is checked in seconds;
truncated and corrupt files are reported along with missing ones, all at once.
"""

from pathlib import Path
from typing import Iterable, List, Sequence

from monodepth_tf.batch import FrameId
from monodepth_tf.data.calibration import read_calib_file, require
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.kitti import KittiRawLayout, SplitEntry
from monodepth_tf.data.pipeline import sample_paths

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"


def image_problem(path: Path) -> str:
    """What is wrong with an image file ('' when it looks whole)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            head = file.read(8)
            file.seek(max(0, size - 12))
            tail = file.read()
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"unreadable ({error.strerror or error})"
    if head.startswith(PNG_SIGNATURE):
        return "" if tail.endswith(PNG_END) else "truncated PNG (no IEND chunk at the end)"
    if head.startswith(JPEG_START):
        return "" if tail.rstrip(b"\x00").endswith(JPEG_END) else \
            "truncated JPEG (no end-of-image marker)"
    return "not a PNG or JPEG image"


def split_problems(layout: KittiRawLayout, entries: Iterable[SplitEntry],
                   frame_ids: Sequence[FrameId], need_velodyne: bool = False,
                   source: str = "split") -> List[str]:
    """Every problem of the files these split entries need, one line each."""
    problems, checked, missing_folders, calib_checked = [], set(), set(), set()
    for number, entry in enumerate(entries, start=1):
        drive = layout.root / entry.folder
        if not drive.is_dir():
            if entry.folder not in missing_folders:
                missing_folders.add(entry.folder)
                problems.append(f"{drive}: drive folder missing (named by {source} line {number})")
            continue
        paths = [Path(p) for p in sample_paths(layout, entry, frame_ids).values()]
        if need_velodyne:
            paths.append(layout.velodyne_path(entry.folder, entry.frame_index))
        for path in paths:
            if path in checked:
                continue
            checked.add(path)
            issue = "missing" if not path.exists() else (
                image_problem(path) if path.suffix != ".bin" else "")
            if issue:
                problems.append(f"{path}: {issue} (needed by {source} line {number})")
        calib_dir = layout.calib_dir(entry.folder)
        if need_velodyne and calib_dir not in calib_checked:
            calib_checked.add(calib_dir)
            problems += calibration_problems(calib_dir)
    return problems


def calibration_problems(calib_dir: Path) -> List[str]:
    """Missing calibration files or keys of a raw date folder."""
    problems = []
    for name, keys, sizes in (("calib_cam_to_cam.txt", ("R_rect_00", "P_rect_02", "P_rect_03",
                                                        "S_rect_02"), (9, 12, 12, 2)),
                              ("calib_velo_to_cam.txt", ("R", "T"), (9, 3))):
        path = calib_dir / name
        try:
            require(read_calib_file(path), path, keys, sizes)
        except DataError as error:
            problems.append(str(error))
    return problems


def raise_on_problems(problems: List[str], what: str) -> None:
    """Raises one DataError listing every problem (training calls this before it starts)."""
    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise DataError(f"{what}: {len(problems)} problem(s) with the data:\n  {shown}{more}")
