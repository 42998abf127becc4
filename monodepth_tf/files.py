"""Where the tools write: output folders checked before any work, and free space checked before
each large write (checkpoints, weight folders), so that a full disk stops a run with a clear
message instead of a half-written file."""

import errno
import os
import re
import shutil
from pathlib import Path
from typing import Union

from monodepth_tf.download import human_bytes

PathLike = Union[str, os.PathLike]

# Kept free beyond each write's own size: the logs, summaries and the filesystem's own margin.
SPARE_BYTES = 64 * 2**20


class OutputPathError(ValueError):
    """An output path that cannot be written as asked (a file where a folder must go, ...)."""


class WriteError(OSError):
    """A write that failed or could not start; the message says what was kept."""

    def __init__(self, message: str, code: int = errno.EIO):
        super().__init__(code, message)

    def __str__(self) -> str:
        return self.strerror


class DiskSpaceError(WriteError):
    """Too little free space for a write (raised before the write starts)."""

    def __init__(self, message: str):
        super().__init__(message, errno.ENOSPC)


def existing_ancestor(path: Path) -> Path:
    """``path`` itself when it exists, else its nearest existing parent folder."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(os.sep)


def check_output_folder(path: PathLike, flag: str) -> Path:
    """The folder a tool will write into, refused before any work when it cannot be one.

    The folder itself may be missing (the tool creates it); it must not be a file, nor lie
    under a file, nor under a folder the user cannot write into.

    Args:
        path: the folder (``~`` is expanded).
        flag: the flag that named it (``--output_dir``), for the message.

    Returns:
        The expanded path.

    Raises:
        OutputPathError: naming the flag, the path and what is wrong.
    """
    path = Path(path).expanduser()
    found = existing_ancestor(path)
    if not found.is_dir():
        where = "is a file" if found == path else f"lies inside {found}, which is a file"
        raise OutputPathError(f"{flag}={path} {where}: give a folder (it is created when "
                              "missing)")
    if not os.access(found, os.W_OK | os.X_OK):
        raise OutputPathError(f"{flag}={path}: {found} is not writable")
    return path


def check_free_space(path: PathLike, needed: int, what: str) -> None:
    """Raises before a write of about ``needed`` bytes under ``path`` when its disk lacks them
    (plus :data:`SPARE_BYTES`).

    Args:
        path: where the write goes (it need not exist yet).
        needed: the write's size in bytes.
        what: what is being written, for the message (``checkpoint 120``).

    Raises:
        DiskSpaceError: naming what, where, the space free and the space needed.
    """
    folder = existing_ancestor(Path(path))
    free = shutil.disk_usage(folder).free
    if free < needed + SPARE_BYTES:
        raise DiskSpaceError(f"{what}: {folder} has {human_bytes(free)} free, the write needs "
                             f"about {human_bytes(needed + SPARE_BYTES)}; free some space "
                             "(nothing was written)")


def first_line(error) -> str:
    """The first non-empty line of an error's message (Keras' messages run on for pages),
    without TensorFlow's ``{{function_node ...}}`` prefix."""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(error))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
