"""The original's test-time post-processing: the disparity blended with its mirror image's."""

import numpy as np


def post_process_disparity(disp: np.ndarray, flipped_back: np.ndarray) -> np.ndarray:
    """Blends the disparity of an image ``[B, h, w]`` with that of its mirror image (already
    flipped back): the mirror's near the left border, the plain one near the right border,
    their mean elsewhere, with linear ramps over the outer 5% of the width."""
    _, h, w = disp.shape
    mean = 0.5 * (disp + flipped_back)
    x, _ = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))
    left_ramp = (1.0 - np.clip(20 * (x - 0.05), 0, 1))[None]
    right_ramp = left_ramp[:, :, ::-1]
    return right_ramp * disp + left_ramp * flipped_back + (1.0 - left_ramp - right_ramp) * mean
