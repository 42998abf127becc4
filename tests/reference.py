"""Reading the original implementation's reference fixtures (NCHW) into our layouts (NHWC)."""

from pathlib import Path

import numpy as np


def nhwc(array: np.ndarray) -> np.ndarray:
    """``[N, C, H, W]`` -> ``[N, H, W, C]``."""
    return np.ascontiguousarray(np.transpose(array, (0, 2, 3, 1)))


def load_npz(reference_dir: Path, name: str) -> dict:
    path = Path(reference_dir) / name
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def relative_to_std(actual: np.ndarray, expected: np.ndarray) -> float:
    """Max absolute error divided by the expected values' standard deviation."""
    return float(np.max(np.abs(actual - expected)) / np.std(expected))
