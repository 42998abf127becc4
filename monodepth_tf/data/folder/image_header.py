"""An image's size read from its PNG or JPEG header, without decoding it."""

import struct
from pathlib import Path
from typing import Tuple, Union

from monodepth_tf.data.errors import DataError

PathLike = Union[str, Path]


def image_size(path: PathLike) -> Tuple[int, int]:
    """``(height, width)`` of a PNG or JPEG from its header (no decoding); DataError naming
    the file otherwise."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            head = file.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                return int(height), int(width)
            if head.startswith(b"\xff\xd8"):
                file.seek(2)
                while True:
                    marker = file.read(2)
                    if len(marker) < 2 or marker[0] != 0xFF:
                        break
                    if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
                        continue
                    length_bytes = file.read(2)
                    if len(length_bytes) < 2:
                        break
                    length = struct.unpack(">H", length_bytes)[0]
                    if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC):
                        height, width = struct.unpack(">xHH", file.read(5))
                        return int(height), int(width)
                    file.seek(length - 2, 1)
    except OSError as error:
        raise DataError(f"{path}: unreadable ({error.strerror or error})") from None
    raise DataError(f"{path}: not a PNG or JPEG image (or its header is damaged)")
