"""Split lists: ``<split_dir>/<split>/<name>_files.txt``, one sample a line.

A line is ``<folder> <frame index> <l|r>`` (odometry: ``<sequence> <frame> l``; the benchmark's
test list: ``image <index>``, no side, read as ``l``). TensorFlow-free.
"""

import os
from pathlib import Path
from typing import List, NamedTuple, Optional


from monodepth_tf.data.errors import DataError, PathLike
from monodepth_tf.data.frames import SIDE_CAMERA


SPLIT_DIR_VARIABLE = "MONODEPTH_SPLIT_DIR"
# The original's split lists, which bin/download_kitti --splits_only fetches.
STANDARD_SPLITS = ("eigen", "eigen_zhou", "eigen_full", "eigen_benchmark", "odom", "benchmark")
FETCH_COMMAND = "bin/download_kitti --splits_only"


def default_split_dir() -> Path:
    """The default ``--split_dir``: ``$MONODEPTH_SPLIT_DIR`` when set (where a user keeps the
    standard split lists once); else, run from a source checkout (or an editable install), the
    repository's top-level ``splits/`` folder; else (after ``pip install .``, where the package
    sits in site-packages without the repository) the per-user folder
    ``$XDG_DATA_HOME/monodepth_tf/splits`` (``~/.local/share/monodepth_tf/splits``)."""
    if os.environ.get(SPLIT_DIR_VARIABLE):
        return Path(os.environ[SPLIT_DIR_VARIABLE]).expanduser()
    checkout = Path(__file__).resolve().parents[2]  # <checkout>/monodepth_tf/data/splits.py
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


def fetch_command(split_dir: Optional[PathLike] = None) -> str:
    """The command that fetches the standard lists into ``split_dir`` (the default folder
    needs no ``--split_dir``)."""
    if split_dir is None or Path(split_dir).resolve() == default_split_dir().resolve():
        return FETCH_COMMAND
    return f"{FETCH_COMMAND} --split_dir {split_dir}"


def missing_split_hint(split: str, split_dir: Optional[PathLike] = None) -> str:
    """What to say when ``split``'s folder or list is missing: the fetch command for a
    standard split, else where to read about split folders."""
    if split in STANDARD_SPLITS:
        return f"fetch the standard split lists with: {fetch_command(split_dir)}"
    return "see splits/README.md"
