"""Inter-frame motion (mean absolute RGB difference of small copies) and static-frame skipping."""

from pathlib import Path
from typing import List, Sequence

import cv2
import numpy as np

from monodepth_tf.data.errors import DataError

MOTION_WIDTH = 256


def read_rgb_small(path: Path) -> np.ndarray:
    """A frame as float32 RGB in [0, 1], area-reduced to at most MOTION_WIDTH wide."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: cannot be decoded as an image")
    if image.shape[1] > MOTION_WIDTH:
        height = max(1, round(image.shape[0] * MOTION_WIDTH / image.shape[1]))
        image = cv2.resize(image, (MOTION_WIDTH, height), interpolation=cv2.INTER_AREA)
    return image[..., ::-1].astype(np.float32) / 255.0


def frame_motion(frames: Sequence[Path]) -> np.ndarray:
    """``[len(frames) - 1]`` mean absolute difference between consecutive frames (RGB in
    [0, 1], area-reduced as :func:`read_rgb_small`): an estimate of inter-frame motion."""
    motion, previous = [], None
    for path in frames:
        image = read_rgb_small(path)
        if previous is not None:
            motion.append(float(np.abs(image - previous).mean()))
        previous = image
    return np.array(motion, np.float64)


def skip_static_frames(frames: Sequence[Path], threshold: float) -> List[int]:
    """Positions of the frames kept: the first, then each frame whose mean absolute
    difference to the last kept frame is at least ``threshold``."""
    if not frames:
        return []
    kept, last = [0], read_rgb_small(frames[0])
    for i in range(1, len(frames)):
        image = read_rgb_small(frames[i])
        if float(np.abs(image - last).mean()) >= threshold:
            kept.append(i)
            last = image
    return kept
