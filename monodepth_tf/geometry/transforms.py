"""Rigid transforms: axis-angle rotations, translations and the ``[B, 4, 4]`` pose matrix."""


import tensorflow as tf

from monodepth_tf.geometry.numerics import fused_multiply_add, matmul_small


AXIS_ANGLE_EPS = 1e-7


def rotation_from_axisangle(axisangle: tf.Tensor, exact: bool = True) -> tf.Tensor:
    """Rodrigues' formula: ``[B, 3]`` axis-angle vectors -> ``[B, 4, 4]`` rotations.

    With ``exact`` the angle (the vector's length) sums its squares with fused multiply-adds,
    which reproduces the original's angles: plain float32 sums put one of the reference poses'
    angles an ulp off, which moved 340 of its 122880 sampling-grid values.
    """
    angle = _vector_length(axisangle, exact)  # [B, 1]
    axis = axisangle / (angle + AXIS_ANGLE_EPS)
    x, y, z = tf.unstack(axis, axis=-1)
    angle = angle[:, 0]
    c, s = tf.cos(angle), tf.sin(angle)
    t = 1.0 - c
    zero, one = tf.zeros_like(c), tf.ones_like(c)
    rows = [
        [x * x * t + c, x * y * t - z * s, x * z * t + y * s, zero],
        [x * y * t + z * s, y * y * t + c, y * z * t - x * s, zero],
        [x * z * t - y * s, y * z * t + x * s, z * z * t + c, zero],
        [zero, zero, zero, one],
    ]
    return tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2)


def _vector_length(vectors: tf.Tensor, exact: bool) -> tf.Tensor:
    """``[B, n]`` -> ``[B, 1]`` Euclidean lengths: the squares summed left to right (with
    ``exact``, each step a :func:`fused_multiply_add`), then the square root."""
    total = vectors[:, :1] * vectors[:, :1]
    for k in range(1, vectors.shape[-1]):
        total = fused_multiply_add(vectors[:, k:k + 1], vectors[:, k:k + 1], total, exact)
    return tf.sqrt(total)


def translation_matrix(translation: tf.Tensor) -> tf.Tensor:
    """``[B, 3]`` translations -> ``[B, 4, 4]`` homogeneous translation matrices."""
    batch = tf.shape(translation)[0]
    eye = tf.eye(4, batch_shape=[batch], dtype=translation.dtype)
    column = tf.concat([translation, tf.zeros_like(translation[:, :1])], axis=-1)  # [B, 4]
    return eye + tf.pad(column[:, :, None], [[0, 0], [0, 0], [3, 0]])


def transformation_from_parameters(axisangle: tf.Tensor, translation: tf.Tensor,
                                   invert: bool = False, exact: bool = True) -> tf.Tensor:
    """The pose network's output as a 4x4 transform.

    Args:
        axisangle, translation: ``[B, 3]`` (or ``[B, 1, 3]``).
        invert: return the inverse motion, ``R^T (x - t)``, as the original does for frames
            before the target.
        exact: the rotation angle as the original rounds it (see
            :func:`rotation_from_axisangle`), else in plain float32.

    Returns:
        ``[B, 4, 4]``: ``T(t) R`` or, inverted, ``R^T T(-t)``.
    """
    axisangle = tf.reshape(axisangle, [-1, 3])
    translation = tf.reshape(translation, [-1, 3])
    rotation = rotation_from_axisangle(axisangle, exact)
    if invert:
        return matmul_small(tf.linalg.matrix_transpose(rotation), translation_matrix(-translation))
    return matmul_small(translation_matrix(translation), rotation)
