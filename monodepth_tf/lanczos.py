"""Lanczos image resizing as Pillow does it, the filter the original applies to its inputs.

The original resizes every network input with Pillow's ``LANCZOS`` (``ANTIALIAS``) filter on
8-bit images. This module reproduces that arithmetic in NumPy (no Pillow dependency):

- separable: one pass per axis, each rounded to uint8. The horizontal pass comes first, except
  (since Pillow 13) when the height shrinks while ``2 (out_w - in_w) > out_h - in_h``: then
  the vertical pass comes first. (Found by comparing with Pillow 13 on hundreds of random
  sizes; older Pillow always starts horizontally. The two agree whenever the vertical pass
  comes first in neither, e.g. KITTI's 1242x375 -> 640x192; the shared reference's
  ``full/input``, 638x235 -> 640x192, was made with the newer order.);
- output pixel ``i`` is centred on input coordinate ``(i + 0.5) * scale`` (``scale`` = input /
  output size); the kernel ``sinc(x) sinc(x / 3)`` on ``|x| < 3`` is stretched by ``scale``
  when shrinking (antialiasing), so it covers ``3 * max(scale, 1)`` input pixels each side;
  taps are the input pixels from ``int(centre - support + 0.5)`` to
  ``int(centre + support + 0.5)``, clamped to the image, their weights normalized to sum 1;
- weights in fixed point with 22 fractional bits (rounded half away from zero), sums started
  at one half, shifted back and clamped to 0..255.

A dimension whose size does not change is left as it is.
"""

from typing import Optional, Tuple

import numpy as np

LANCZOS_SUPPORT = 3.0
PRECISION_BITS = 32 - 8 - 2


def _lanczos(x: np.ndarray) -> np.ndarray:
    inside = np.abs(x) < LANCZOS_SUPPORT
    return np.where(inside, np.sinc(x) * np.sinc(x / LANCZOS_SUPPORT), 0.0)


def lanczos_taps(in_size: int, out_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Taps of a 1-D resize: indices ``[out_size, K]`` (int) and fixed-point weights
    ``[out_size, K]`` (int64; zero for the padding taps)."""
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = LANCZOS_SUPPORT * filter_scale
    width = int(np.ceil(support)) * 2 + 1
    centre = (np.arange(out_size) + 0.5) * scale
    first = np.maximum(np.trunc(centre - support + 0.5).astype(np.int64), 0)
    stop = np.minimum(np.trunc(centre + support + 0.5).astype(np.int64), in_size)
    offsets = np.arange(width)
    index = first[:, None] + offsets[None, :]
    used = index < stop[:, None]
    weights = np.where(used, _lanczos((index - centre[:, None] + 0.5) / filter_scale), 0.0)
    total = weights.sum(axis=1, keepdims=True)
    weights = np.where(total != 0, weights / np.where(total != 0, total, 1.0), weights)
    one = float(1 << PRECISION_BITS)
    fixed = np.where(weights < 0, np.trunc(-0.5 + weights * one),
                     np.trunc(0.5 + weights * one)).astype(np.int64)
    return np.minimum(index, in_size - 1), fixed


def lanczos_matrix(in_size: int, out_size: int) -> np.ndarray:
    """The fixed-point weights of a 1-D resize as a dense ``[out_size, in_size]`` float64
    matrix (integers, so products with uint8 pixels and their sums are exact in float64)."""
    index, weights = lanczos_taps(in_size, out_size)
    matrix = np.zeros((out_size, in_size))
    rows = np.repeat(np.arange(out_size), index.shape[1])
    np.add.at(matrix, (rows, index.ravel()), weights.ravel())
    return matrix


def _resize_axis(image: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    matrix = lanczos_matrix(image.shape[axis], out_size)
    moved = np.moveaxis(image, axis, 0).astype(np.float64)  # [in, ...]
    total = np.tensordot(matrix, moved, axes=(1, 0)) + (1 << (PRECISION_BITS - 1))
    shifted = np.floor(total / (1 << PRECISION_BITS))  # exact: a power of two
    return np.moveaxis(np.clip(shifted, 0, 255).astype(np.uint8), 0, axis)


def vertical_pass_first(in_height: int, in_width: int, height: int, width: int) -> bool:
    """Whether Pillow (13 and later) resizes the rows before the columns."""
    return height < in_height and 2 * (width - in_width) > height - in_height


def resize_lanczos(image: np.ndarray, height: int, width: int,
                   vertical_first: Optional[bool] = None) -> np.ndarray:
    """Resizes a uint8 image ``[H, W]`` or ``[H, W, C]`` to ``[height, width(, C)]``.

    Args:
        vertical_first: pass order; None: Pillow 13's choice (:func:`vertical_pass_first`),
            False: older Pillow's (always horizontal first).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"resize_lanczos takes uint8 images [H, W(, C)], got {image.dtype} "
                         f"{list(image.shape)}")
    if height < 1 or width < 1:
        raise ValueError(f"cannot resize to {height}x{width}")
    if vertical_first is None:
        vertical_first = vertical_pass_first(image.shape[0], image.shape[1], height, width)
    axes = ((0, height), (1, width)) if vertical_first else ((1, width), (0, height))
    for axis, size in axes:
        if image.shape[axis] != size:
            image = _resize_axis(image, size, axis)
    return image
