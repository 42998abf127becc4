"""Colour-mapped disparity images, as the original's prediction script draws them.

The disparity is normalized linearly from its minimum (0) to its 95th percentile (1; larger
values saturate) and coloured with the ``magma`` map: black-purple for far, light yellow for
near. The map is OpenCV's ``COLORMAP_MAGMA``, the same 256-entry table as matplotlib's
``magma`` (checked entry by entry at the ends and middle in tests), indexed as matplotlib
indexes it: entry ``floor(256 x)`` for a normalized value ``x``, clamped to 0..255.
"""

import cv2
import numpy as np

PERCENTILE = 95


def magma_table() -> np.ndarray:
    """The magma colour table ``[256, 3]`` uint8 RGB, dark (index 0) to bright (255)."""
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    return cv2.applyColorMap(ramp, cv2.COLORMAP_MAGMA)[:, 0, ::-1].copy()


_TABLE = magma_table()


def magma(values: np.ndarray) -> np.ndarray:
    """Normalized values ``[...]`` (0 -> darkest, 1 and above -> brightest) -> uint8 RGB
    ``[..., 3]``."""
    values = np.nan_to_num(np.asarray(values, np.float64), nan=0.0)
    index = np.clip(np.floor(values * 256.0), 0, 255).astype(np.int64)
    return _TABLE[index]


def colorize_disparity(disp: np.ndarray) -> np.ndarray:
    """A disparity map ``[H, W]`` -> its colour image ``[H, W, 3]`` uint8 RGB, normalized from
    the map's minimum to its 95th percentile."""
    disp = np.asarray(disp, np.float64)
    low, high = disp.min(), np.percentile(disp, PERCENTILE)
    span = high - low
    normalized = (disp - low) / span if span > 0 else np.zeros_like(disp)
    return magma(normalized)
