"""Image files: PNG/JPEG decoding with clear errors, and the check that a file is whole."""

from pathlib import Path

import cv2
import numpy as np

from monodepth_tf.data.errors import DataError, PathLike


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


PNG_END_CHUNK = b"IEND"


JPEG_START, JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"


TAIL_BYTES = 32  # where the end marker must be found (a PNG's IEND chunk is the last 12)


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
