"""One resize policy on every path, the original's: Pillow's Lanczos on 8-bit images in,
bilinear disparities out.

The original resizes every network input with Pillow's ``LANCZOS`` (``ANTIALIAS``) filter on
8-bit images, in its dataset (scale 0 from the full image, scale s from scale s - 1) and in
test_simple.py, and takes a disparity back to an image's size bilinearly (``F.interpolate``,
``align_corners=False``). This module is that policy for every path of the project: the
training and validation pipeline, prediction, int8 calibration and the SavedModel.

- :func:`resize_lanczos`: the NumPy reference (no Pillow dependency);
- :func:`resize_lanczos_tf`: the same arithmetic in TensorFlow ops only (any batch; static or
  dynamic sizes; no Python or NumPy at run time, so TF Serving runs it), bit-identical to
  :func:`resize_lanczos` and to Pillow;
- :func:`resize_bilinear`: a disparity back to an image's size (half-pixel centres, no
  antialiasing). Evaluation keeps the original's own ``cv2.resize`` (bilinear) of disparities
  to the ground truth's size (:mod:`monodepth_tf.evaluation.depth`).

Pillow's Lanczos arithmetic:

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
  ``int(centre + support + 0.5)``, clamped to the image, their weights normalized by their sum
  (added up in tap order, as Pillow does);
- weights in fixed point with 22 fractional bits (rounded half away from zero), sums started
  at one half, shifted back and clamped to 0..255.

A dimension whose size does not change is left as it is.

How the TensorFlow version stays exact and fast: the taps come from :func:`lanczos_taps` (NumPy,
at trace time, made into constant tables once per size) when the sizes are static, else from
:func:`lanczos_taps_tf` (the same float64 formulas in graph ops; tests compare the two over
thousands of sizes). Each pass resizes the rows of a uint8 matrix: the row pass works in place
(``[B, H, W * C]``), the column pass on one plain 2-D transpose of the batch (``[W, C * B * H]``,
transposed back after). Outputs are grouped in blocks of :data:`BLOCK` consecutive pixels; a
block reads a window of consecutive input rows (one gather), and one float32 matmul per block
multiplies it by all the parts of the block's fixed-point weights:

- two 11-bit parts, ``w = 2**11 w1 + w0`` (``w0`` in 0..2047), when there are at most
  :data:`MAX_TAPS_TWO_PARTS` taps (all of KITTI's sizes: 1242 -> 640 has 13): the sums stay
  below ``32 * 255 * 2047 < 2**24``, which float32 holds exactly whatever the summation order
  (TF32 inputs hold 11-bit integers too), and Pillow's rounding is done in float32 on integers
  below ``2**24``;
- else three byte-sized parts, ``w = 2**16 w2 + 2**8 w1 + w0`` (sums below ``2**24`` for up to
  256 taps of 255 x 255), recombined in int32, Pillow's own accumulator type; also when oneDNN
  may round float32 matmul inputs to bfloat16 (``ONEDNN_DEFAULT_FPMATH_MODE``), which holds
  8-bit integers exactly but not 11-bit ones.

256 taps cover a shrink of up to 42x per axis; larger shrinks raise an error. A horizontal
mirror (``mirror=``, the pipeline's flip) costs nothing: the column pass reads its window rows
in reverse order.
"""

import functools
import os
from typing import List, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

LANCZOS_SUPPORT = 3.0
PRECISION_BITS = 32 - 8 - 2
BLOCK = 16  # output pixels per matmul block
MAX_TAPS = 256  # exact float32 sums: MAX_TAPS * 255 * 255 < 2**24
MAX_TAPS_TWO_PARTS = 32  # two 11-bit parts: 32 * 255 * 2047 < 2**24

Size = Union[int, tf.Tensor]


# --- NumPy reference ----------------------------------------------------------------------------

def _lanczos(x: np.ndarray) -> np.ndarray:
    inside = np.abs(x) < LANCZOS_SUPPORT
    return np.where(inside, np.sinc(x) * np.sinc(x / LANCZOS_SUPPORT), 0.0)


def lanczos_taps(in_size: int, out_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Taps of a 1-D resize: indices ``[out_size, K]`` (int) and fixed-point weights
    ``[out_size, K]`` (int64; zero for the padding taps). Each row's taps are consecutive input
    pixels from the row's first index (the indices are clamped to the image)."""
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
    total = np.cumsum(weights, axis=1)[:, -1:]  # in tap order, as Pillow adds them
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


def vertical_pass_first(in_height, in_width, height, width):
    """Whether Pillow (13 and later) resizes the rows before the columns (Python ints or
    tensors)."""
    return (height < in_height) & (2 * (width - in_width) > height - in_height)


def resize_lanczos(image: np.ndarray, height: int, width: int,
                   vertical_first: Optional[bool] = None) -> np.ndarray:
    """Resizes a uint8 image ``[H, W]`` or ``[H, W, C]`` to ``[height, width(, C)]`` (NumPy).

    Args:
        vertical_first: pass order; None: Pillow 13's choice (:func:`vertical_pass_first`),
            False: older Pillow's (always horizontal first).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"resize_lanczos takes uint8 images [H, W(, C)], got {image.dtype} "
                         f"{list(image.shape)}")
    _check_size(height, width)
    if vertical_first is None:
        vertical_first = vertical_pass_first(image.shape[0], image.shape[1], height, width)
    axes = ((0, height), (1, width)) if vertical_first else ((1, width), (0, height))
    for axis, size in axes:
        if image.shape[axis] != size:
            image = _resize_axis(image, size, axis)
    return image


def _check_size(height: int, width: int) -> None:
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"cannot resize to {height}x{width}")


# --- TensorFlow ---------------------------------------------------------------------------------

def _kept(x: tf.Tensor) -> tf.Tensor:
    """``x`` as computed: a Snapshot, which grappler's arithmetic optimizer does not look
    through, so that it cannot regroup ``(a + b) + c`` into ``a + (b + c)``."""
    return tf.raw_ops.Snapshot(input=x)


def _sinc_tf(x: tf.Tensor) -> tf.Tensor:
    """``sin(pi x) / (pi x)`` as ``np.sinc`` computes it (float64)."""
    y = np.pi * tf.where(x == 0, tf.constant(1e-20, tf.float64), x)
    return tf.math.divide_no_nan(tf.sin(y), y)


def lanczos_taps_tf(in_size: Size, out_size: Size) -> Tuple[tf.Tensor, tf.Tensor]:
    """:func:`lanczos_taps` in graph ops, for sizes known only at run time: indices
    ``[out_size, K]`` int32 and fixed-point weights ``[out_size, K]`` int32 (float64
    arithmetic on the ``[out_size, K]`` tables, the same formulas and order as NumPy's).

    Grappler (which TF Serving runs) must not change a rounding here: sums of three terms are
    kept in order (:func:`_kept`), and divisions use ``divide_no_nan`` (same IEEE division),
    which constant folding does not turn into a multiplication by the reciprocal.
    """
    n = tf.cast(in_size, tf.float64)
    scale = tf.math.divide_no_nan(n, tf.cast(out_size, tf.float64))
    filter_scale = tf.maximum(scale, 1.0)
    support = LANCZOS_SUPPORT * filter_scale
    width = tf.cast(tf.math.ceil(support), tf.int32) * 2 + 1
    centre = (tf.cast(tf.range(out_size), tf.float64) + 0.5) * scale
    first = tf.maximum(tf.cast(tf.math.floor(tf.maximum(_kept(centre - support) + 0.5, 0.0)),
                               tf.int32), 0)  # trunc of a value >= 0
    stop = tf.minimum(tf.cast(tf.math.floor(_kept(centre + support) + 0.5), tf.int32),
                      tf.cast(in_size, tf.int32))
    index = first[:, None] + tf.range(width)[None, :]
    used = index < stop[:, None]
    x = tf.math.divide_no_nan(_kept(tf.cast(index, tf.float64) - centre[:, None]) + 0.5,
                              filter_scale)
    third = tf.math.divide_no_nan(x, tf.constant(LANCZOS_SUPPORT, tf.float64))
    kernel = tf.where(tf.abs(x) < LANCZOS_SUPPORT, _sinc_tf(x) * _sinc_tf(third),
                      tf.zeros_like(x))
    weights = tf.where(used, kernel, tf.zeros_like(kernel))
    total = tf.math.cumsum(weights, axis=1)[:, -1:]
    safe = tf.where(total != 0, total, tf.ones_like(total))
    weights = tf.where(total != 0, tf.math.divide_no_nan(weights, safe), weights)
    one = float(1 << PRECISION_BITS)
    fixed = tf.where(weights < 0, -tf.math.floor(0.5 - weights * one),
                     tf.math.floor(0.5 + weights * one))  # trunc(x -/+ 0.5) for x <0 / >= 0
    return tf.minimum(index, tf.cast(in_size, tf.int32) - 1), tf.cast(fixed, tf.int32)


def _taps(in_size: Size, out_size: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """Indices and weights ``[out_size, K]`` int32: NumPy's at trace time for a static input
    size, else computed in the graph."""
    if isinstance(in_size, int):
        index, weights = lanczos_taps(in_size, out_size)
        return tf.constant(index, tf.int32), tf.constant(weights, tf.int32)
    return lanczos_taps_tf(in_size, out_size)


def _part_shifts(bits: Tuple[int, ...]) -> List[int]:
    """Where each weight part sits, high first: ``(6, 8, 8)`` -> ``[16, 8, 0]``."""
    return [sum(bits[i + 1:]) for i in range(len(bits))]


def _weight_parts(table: tf.Tensor, bits: Tuple[int, ...]) -> List[tf.Tensor]:
    """Splits int32 fixed-point weights into parts, high first: ``w = sum_p 2**shift_p w_p``
    (:func:`_part_shifts`); every part but the first is in ``0 .. 2**bits - 1`` (the first
    keeps the sign). Returns float32 tensors (exact)."""
    parts = []
    for i, (b, shift) in enumerate(zip(bits, _part_shifts(bits))):
        part = tf.bitwise.right_shift(table, shift)
        if i > 0:
            part = tf.bitwise.bitwise_and(part, (1 << b) - 1)
        parts.append(tf.cast(part, tf.float32))
    return parts


def _block_tables(index: tf.Tensor, weights: tf.Tensor, in_size: Size, out_size: int,
                  bits: Tuple[int, ...]):
    """The taps regrouped per block of :data:`BLOCK` outputs.

    Returns:
        window: ``[blocks, L]`` int32, the input pixels each block reads (consecutive from the
            block's first tap, clamped to the image);
        table: ``[blocks, P * BLOCK, L]`` float32, the weights' ``P = len(bits)`` parts (high
            first), stacked along the output axis so that one matmul computes them all.
    """
    blocks = -(-out_size // BLOCK)
    padded = blocks * BLOCK
    taps = tf.shape(weights)[1]
    first = tf.concat([index[:, 0], tf.fill([padded - out_size], index[-1, 0])], 0)
    weights = tf.pad(weights, [[0, padded - out_size], [0, 0]])
    start = first[::BLOCK]  # [blocks]
    offset = first - tf.repeat(start, BLOCK)  # [padded] >= 0: first taps never decrease
    length = tf.reduce_max(offset) + taps
    position = tf.range(length)[None, :] - offset[:, None]  # tap of each window pixel
    inside = (position >= 0) & (position < taps)
    table = tf.where(inside, tf.gather(weights, tf.clip_by_value(position, 0, taps - 1),
                                       batch_dims=1), 0)
    table = tf.reshape(table, [blocks, BLOCK, length])
    window = tf.minimum(start[:, None] + tf.range(length)[None, :], tf.cast(in_size, tf.int32) - 1)
    return window, tf.concat(_weight_parts(table, bits), axis=1)


TWO_PARTS, THREE_PARTS = (11, 11), (6, 8, 8)  # bits per weight part, high part first


def _two_parts_allowed() -> bool:
    """Whether float32 matmuls keep 11-bit integers exact: not when oneDNN may round their
    inputs to bfloat16 (``ONEDNN_DEFAULT_FPMATH_MODE``); byte-sized parts are exact then too."""
    return os.environ.get("ONEDNN_DEFAULT_FPMATH_MODE", "").strip().lower() in ("", "strict")


def _round_sums(sums: List[tf.Tensor], bits: Tuple[int, ...]) -> tf.Tensor:
    """Pillow's rounding of the exact per-part sums (float32 integers, high part first):
    ``clip((sum_p 2**shift_p sums_p + 2**21) >> 22, 0, 255)`` as uint8.

    Two parts: in float32, ``floor((high + floor(low / 2**11) + 2**10) / 2**11)``, every
    intermediate an integer below 2**24 (exact, in any grouping), the last floor being the
    cast's truncation after clipping. Three parts: in int32."""
    if len(bits) == 2:
        high, low = sums
        carried = high + tf.floor(low * 2.0 ** -bits[1]) + 2.0 ** (PRECISION_BITS - 1 - bits[1])
        pixels = carried * 2.0 ** -(PRECISION_BITS - bits[1])  # its floor is the value
        return tf.cast(tf.clip_by_value(pixels, 0.0, 255.0), tf.uint8)  # truncates: floor
    total = tf.constant(1 << (PRECISION_BITS - 1), tf.int32)
    for part, shift in zip(sums, _part_shifts(bits)):
        total = total + tf.bitwise.left_shift(tf.cast(part, tf.int32), shift)
    pixels = tf.clip_by_value(tf.bitwise.right_shift(total, PRECISION_BITS), 0, 255)
    return tf.cast(pixels, tf.uint8)


def _checked_taps(in_size: Size, out_size: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """:func:`_taps`, refusing (InvalidArgumentError) more than :data:`MAX_TAPS` taps."""
    index, weights = _taps(in_size, out_size)
    tf.debugging.assert_less_equal(tf.shape(weights)[1], MAX_TAPS, message=(
        f"Lanczos resize: a shrink to {out_size} pixels of more than {MAX_TAPS // 6}x "
        "needs more taps than the exact float32 sums allow"))
    return index, weights


def _static_tables(in_size: int, out_size: int, two_parts_allowed: bool):
    """``(window, table, bits)`` (:func:`_block_tables`) for static sizes, made once, eagerly
    (also while a graph is traced), and kept as NumPy arrays: the graph then holds constants,
    not the ops that make them (tf.data does not fold those; it would redo them per call).
    In a TF1 graph (nothing runs eagerly) they stay graph ops."""
    with tf.init_scope():
        if tf.executing_eagerly():
            return _cached_tables(in_size, out_size, two_parts_allowed)
    return _tables(in_size, out_size, two_parts_allowed)


@functools.lru_cache(maxsize=64)
def _cached_tables(in_size: int, out_size: int, two_parts_allowed: bool):
    window, table, bits = _tables(in_size, out_size, two_parts_allowed)
    return window.numpy(), table.numpy(), bits


def _tables(in_size: int, out_size: int, two_parts_allowed: bool):
    index, weights = _checked_taps(in_size, out_size)
    two = two_parts_allowed and weights.shape[1] <= MAX_TAPS_TWO_PARTS
    bits = TWO_PARTS if two else THREE_PARTS
    return _block_tables(index, weights, in_size, out_size, bits) + (bits,)


def _apply_tables(images: tf.Tensor, window, table, bits: Tuple[int, ...], out_size: int,
                  mirror: Optional[tf.Tensor] = None) -> tf.Tensor:
    """uint8 ``[B, n, M]`` -> uint8 ``[B, out_size, M]``: one float32 matmul per block of
    outputs for all weight parts (``table``, ``[blocks, P * BLOCK, L]``) against the block's
    window of input rows, then Pillow's rounding. ``mirror`` (scalar bool): read the input
    rows in reverse order (the resize of the mirrored input, at no cost)."""
    if mirror is not None:
        window = tf.where(mirror, _dims(images)[1] - 1 - window, window)
    slabs = tf.cast(tf.gather(images, window, axis=1), tf.float32)  # [B, blocks, L, M]
    sums = tf.split(tf.matmul(table, slabs), len(bits), axis=2)  # [B, blocks, BLOCK, M] each
    batch, _, columns = _dims(images)
    return tf.reshape(_round_sums(sums, bits), [batch, -1, columns])[:, :out_size]


def _resize_rows(images: tf.Tensor, out_size: int,
                 mirror: Optional[tf.Tensor] = None) -> tf.Tensor:
    """One pass along axis 1: uint8 ``[B, n, M]`` -> uint8 ``[B, out_size, M]``. Two weight
    parts when there are at most :data:`MAX_TAPS_TWO_PARTS` taps, else three (decided at
    trace time for a static ``n``, else at run time)."""
    in_size = images.shape[1]
    if in_size is not None:
        window, table, bits = _static_tables(in_size, out_size, _two_parts_allowed())
        return _apply_tables(images, window, table, bits, out_size, mirror)
    in_size = tf.shape(images)[1]
    index, weights = _checked_taps(in_size, out_size)

    def split(bits):
        window, table = _block_tables(index, weights, in_size, out_size, bits)
        return _apply_tables(images, window, table, bits, out_size, mirror)

    if not _two_parts_allowed():
        return split(THREE_PARTS)
    return tf.cond(tf.shape(weights)[1] <= MAX_TAPS_TWO_PARTS,
                   lambda: split(TWO_PARTS), lambda: split(THREE_PARTS))


def _dims(images: tf.Tensor) -> List[Size]:
    """The dimensions of ``images``: Python ints where static, else scalar tensors."""
    shape = tf.shape(images)
    return [d if d is not None else shape[i] for i, d in enumerate(images.shape.as_list())]


def _mirrored(images: tf.Tensor, mirror: Optional[tf.Tensor]) -> tf.Tensor:
    """``images`` ``[B, H, W, C]`` mirrored horizontally where ``mirror`` (scalar bool)."""
    if mirror is None:
        return images
    return tf.cond(mirror, lambda: tf.reverse(images, [2]), lambda: tf.identity(images))


def _resize_axis_tf(images: tf.Tensor, out_size: int, axis: int,
                    mirror: Optional[tf.Tensor] = None) -> tf.Tensor:
    """One pass along axis 1 (rows) or 2 (columns) of uint8 ``[B, H, W, C]``, skipped when
    the size does not change; ``mirror`` (columns only): mirror the input first.

    Rows are resized in place (``[B, H, W * C]``). Columns are resized as the rows of one
    plain 2-D transpose of the whole batch, ``[B * H, W * C] -> [W, C * B * H]`` (a uint8
    transpose without the 3-byte channel chunks that make a 4-D transpose slow), and
    transposed back."""
    def run():
        batch, height, width, channels = _dims(images)
        if axis == 1:
            rows = tf.reshape(images, [batch, height, width * channels])
            return tf.reshape(_resize_rows(rows, out_size), [batch, out_size, width, channels])
        columns = tf.transpose(tf.reshape(images, [batch * height, width * channels]))
        columns = tf.reshape(columns, [1, width, channels * batch * height])
        resized = tf.reshape(_resize_rows(columns, out_size, mirror), [out_size * channels, -1])
        return tf.reshape(tf.transpose(resized), [batch, height, out_size, channels])

    in_size = images.shape[axis]
    if in_size is not None:
        return _mirrored(images, mirror) if in_size == out_size else run()
    return tf.cond(tf.equal(tf.shape(images)[axis], out_size), lambda: _mirrored(images, mirror),
                   run)


def _both_passes(images: tf.Tensor, height: int, width: int, vertical_first: bool,
                 mirror: Optional[tf.Tensor] = None):
    order = ((1, height), (2, width)) if vertical_first else ((2, width), (1, height))
    for axis, size in order:  # mirroring commutes with the row pass: done in the column pass
        images = _resize_axis_tf(images, size, axis, mirror if axis == 2 else None)
    return tf.ensure_shape(images, [None, height, width, None])


def resize_lanczos_tf(images, height: int, width: int, mirror=None) -> tf.Tensor:
    """Pillow's Lanczos resize in TensorFlow: uint8 ``[B, H, W, C]`` (or ``[H, W, C]``) ->
    uint8 ``[B, height, width, C]`` (or ``[height, width, C]``), bit-identical to
    :func:`resize_lanczos` and Pillow 13. ``H`` and ``W`` may be unknown until run time (the
    taps are then computed in the graph); the feed size is static.

    Args:
        mirror: optional scalar bool: resize the horizontally mirrored images instead (the
            column pass reads its input in reverse order: no extra copy of the full images).
    """
    if mirror is not None:
        mirror = tf.convert_to_tensor(mirror, tf.bool)
    _check_size(height, width)
    height, width = int(height), int(width)
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.uint8 or images.shape.rank not in (3, 4):
        raise ValueError(f"resize_lanczos_tf takes uint8 images [B, H, W, C] or [H, W, C], got "
                         f"{images.dtype.name} {images.shape}")
    single = images.shape.rank == 3
    batch = images[None] if single else images
    in_height, in_width = batch.shape[1], batch.shape[2]
    if in_height is not None and in_width is not None:
        out = _both_passes(batch, height, width,
                           bool(vertical_pass_first(in_height, in_width, height, width)), mirror)
    else:
        shape = tf.shape(batch)
        out = tf.cond(vertical_pass_first(shape[1], shape[2], height, width),
                      lambda: _both_passes(batch, height, width, True, mirror),
                      lambda: _both_passes(batch, height, width, False, mirror))
    return out[0] if single else out


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 -> float32 in [0, 1], ``k / 255`` as torchvision's ``ToTensor`` divides.

    ``divide_no_nan`` is IEEE's correctly rounded division, and grappler's constant folding
    leaves it alone: it turns a plain ``x / 255`` into ``x * (1 / 255)``, which is an ulp off
    for some ``k``, and a network with random weights amplifies such ulps to 2e-4 of
    disparity. TF Serving runs grappler, so the SavedModel must not depend on the rewrite
    being off.
    """
    return tf.math.divide_no_nan(tf.cast(images, tf.float32), tf.constant(255.0))


def network_input(images, height: int, width: int) -> tf.Tensor:
    """uint8 RGB images ``[B, H, W, 3]`` -> the network input ``[B, height, width, 3]``
    float32 in [0, 1]: :func:`resize_lanczos_tf`, then :func:`to_float`."""
    return to_float(resize_lanczos_tf(images, height, width))


def resize_bilinear(maps: tf.Tensor, size) -> tf.Tensor:
    """``[B, h, w, C]`` -> ``[B, H, W, C]`` bilinearly, half-pixel centres, no antialiasing (as
    the original's ``F.interpolate(..., "bilinear", align_corners=False)``)."""
    return tf.image.resize(maps, size, method="bilinear")
