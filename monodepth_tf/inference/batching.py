"""Running a converted model (TFLite, ONNX, OpenVINO) on a batch of any size."""

from typing import Callable, Optional

import numpy as np


def run_in_batches(invoke: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
                   fixed_batch: Optional[int], kind: str) -> np.ndarray:
    """Runs a converted model's ``invoke`` on float32 ``images`` ``[B, ...]``: at once when the
    model takes any batch (``fixed_batch`` None), else ``fixed_batch`` images at a time, the
    last batch filled up with copies of its last image (their outputs dropped).

    Raises:
        ValueError: no image (the message names ``kind``).
    """
    images = np.ascontiguousarray(images, np.float32)
    if len(images) == 0:
        raise ValueError(f"the {kind} model got an empty batch")
    if fixed_batch is None:
        return invoke(images)
    outputs = []
    for start in range(0, len(images), fixed_batch):
        chunk = images[start:start + fixed_batch]
        filler = np.repeat(chunk[-1:], fixed_batch - len(chunk), axis=0)
        outputs.append(invoke(np.concatenate([chunk, filler]))[:len(chunk)])
    return np.concatenate(outputs)
