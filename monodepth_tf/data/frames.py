"""How the frames of a sample are named, TensorFlow-free.

A frame id is an integer offset from the sample's frame on the same camera (0, -1, +1, any
+-k), or ``"s"``, the other camera of the stereo pair at the same instant. Its key (in batches
and path dictionaries) is the string ``"0"``, ``"-1"``, ``"1"``, ``"s"``. Sides: ``"l"``
(KITTI's camera 2) and ``"r"`` (camera 3).
"""

from typing import Union

from monodepth_tf.data.errors import DataError

FrameId = Union[int, str]

SIDE_CAMERA = {"l": 2, "r": 3}
OTHER_SIDE = {"l": "r", "r": "l"}
STEREO = "s"


def frame_key(frame_id: FrameId) -> str:
    """The key of a frame id: ``0 -> "0"``, ``-1 -> "-1"``, ``"1" -> "1"``, ``"s" -> "s"``."""
    if frame_id == STEREO:
        return STEREO
    try:
        return str(int(frame_id))
    except (TypeError, ValueError):
        raise DataError(f"frame id {frame_id!r} is neither an integer offset nor 's'") from None


def frame_offset(key: str) -> int:
    """The temporal offset of a frame key (``"s"`` has none and raises)."""
    if key == STEREO:
        raise ValueError("the stereo frame 's' has no temporal offset")
    return int(key)
