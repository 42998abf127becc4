"""What the geometry layers share: their Keras base layer, and arithmetic rounded as the
original's CPU kernels round it (fused multiply-adds, small matrix products summed in order).
"""


import keras
import tensorflow as tf


class GeometryLayer(keras.layers.Layer):
    """Base of the geometry layers: they compute in their inputs' dtype (no autocasting), so
    they run in float64 for gradient checks and stay float32 under mixed precision."""

    def __init__(self, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)


def matmul_small(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``[B, n, k] @ [B, k, m]`` for tiny matrices, summing the k products left to right.

    The original's batched matmul of 4x4 matrices sums in this order without fused
    multiply-adds; doing the same keeps transforms and sampling grids bitwise equal to its own.
    """
    out = a[:, :, 0:1] * b[:, 0:1, :]
    for k in range(1, a.shape[2]):
        out = out + a[:, :, k:k + 1] * b[:, k:k + 1, :]
    return out


def fused_multiply_add(a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, exact: bool = True) -> tf.Tensor:
    """``a * b + c``; with ``exact``, rounded once, as a hardware FMA does (evaluated in float64
    for float32).

    The original's CPU kernels (grid sampling, bilinear upsampling) are compiled with fused
    multiply-adds; evaluating the same chain of FMAs keeps our results equal to theirs bit for
    bit. That matters: the SSIM term subtracts nearly equal numbers, so a one-ulp difference in a
    warped pixel can flip an auto-mask decision. Without ``exact`` (and for float16/bfloat16 under
    mixed precision, or float64) it is plain arithmetic, about three times cheaper in TensorFlow's
    op-by-op execution, and within an ulp of the fused result.
    """
    if not exact or a.dtype != tf.float32:
        return a * b + c
    wide = lambda t: tf.cast(t, tf.float64)  # noqa: E731
    return tf.cast(wide(a) * wide(b) + wide(c), tf.float32)
