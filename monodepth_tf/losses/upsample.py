"""Bilinear upsampling of disparities to the input size, as the original's ``F.interpolate``.
"""


import tensorflow as tf

from monodepth_tf.geometry.numerics import fused_multiply_add


def _linear_taps(in_size, out_size):
    """Source indices and weights of align_corners=False linear interpolation along one axis:
    ``(i0, i1, w0, w1)``, each ``[out_size]``, computed in float32 as PyTorch does."""
    scale = tf.cast(in_size, tf.float32) / tf.cast(out_size, tf.float32)
    src = tf.maximum(scale * (tf.cast(tf.range(out_size), tf.float32) + 0.5) - 0.5, 0.0)
    i0 = tf.minimum(tf.cast(tf.floor(src), tf.int32), in_size - 1)
    i1 = tf.minimum(i0 + 1, in_size - 1)
    w1 = tf.clip_by_value(src - tf.cast(i0, tf.float32), 0.0, 1.0)
    return i0, i1, 1.0 - w1, w1


def upsample_bilinear(x: tf.Tensor, size, exact: bool = True) -> tf.Tensor:
    """Bilinear resize with half-pixel centres (PyTorch's ``align_corners=False``).

    ``[B, h, w, C] -> [B, H, W, C]``. With ``exact``, evaluated as the original's CPU kernel does
    (width taps then height taps, each a fused multiply-add), so disparities upsampled for the
    loss equal the original's bit for bit; ``tf.image.resize`` differs in the last bit, which is
    enough to flip auto-mask decisions at near-ties. Without ``exact``, the same taps in plain
    float arithmetic. A resize to the input's own (static) size returns the input, which is
    what the taps (weights 1 and 0) compute.
    """
    if (isinstance(size[0], int) and isinstance(size[1], int)
            and tuple(x.shape[1:3]) == (size[0], size[1])):
        return x
    shape = tf.shape(x)
    taps_h = _linear_taps(shape[1], size[0])
    taps_w = _linear_taps(shape[2], size[1])

    @tf.custom_gradient
    def resize(x):
        hi0, hi1, hw0, hw1 = taps_h
        wi0, wi1, ww0, ww1 = taps_w
        ww0, ww1 = ww0[None, None, :, None], ww1[None, None, :, None]
        hw0, hw1 = hw0[None, :, None, None], hw1[None, :, None, None]

        # Width taps on every input row first (each output row takes two of these rows, so
        # the values are the kernel's own), then the height taps.
        left, right = tf.gather(x, wi0, axis=2), tf.gather(x, wi1, axis=2)
        wide = fused_multiply_add(left, tf.cast(ww0, x.dtype),
                                           right * tf.cast(ww1, x.dtype), exact)  # [B, h, W, C]
        top, bottom = tf.gather(wide, hi0, axis=1), tf.gather(wide, hi1, axis=1)
        out = fused_multiply_add(top, tf.cast(hw0, x.dtype),
                                          bottom * tf.cast(hw1, x.dtype), exact)

        def gradient(upstream):
            # The resize is out = R_h x R_w^T per image and channel, so the gradient is
            # R_h^T upstream R_w, two small matrix products with the dense tap matrices.
            rows = _tap_matrix(taps_h, shape[1], x.dtype)  # [H, h]
            cols = _tap_matrix(taps_w, shape[2], x.dtype)  # [W, w]
            return tf.einsum("Hh,bHWc,Ww->bhwc", rows, upstream, cols)

        return out, gradient

    return resize(x)


def _tap_matrix(taps, in_size, dtype) -> tf.Tensor:
    """The ``[out_size, in_size]`` matrix of linear interpolation taps ``(i0, i1, w0, w1)``."""
    i0, i1, w0, w1 = taps
    return (tf.one_hot(i0, in_size, dtype=dtype) * tf.cast(w0, dtype)[:, None]
            + tf.one_hot(i1, in_size, dtype=dtype) * tf.cast(w1, dtype)[:, None])
