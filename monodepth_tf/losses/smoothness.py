"""The edge-aware smoothness term on the mean-normalized disparity.
"""


import tensorflow as tf



def edge_aware_smoothness(disp: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """Mean absolute disparity gradients, damped by ``exp(-|image gradient|)``: a scalar.

    Differentiable with respect to ``disp`` (the image is data: no gradient reaches it).

    Args:
        disp: ``[B, H, W, 1]``; image: ``[B, H, W, 3]``.
    """
    image_dx = tf.reduce_mean(tf.abs(image[:, :, :-1] - image[:, :, 1:]), -1, keepdims=True)
    image_dy = tf.reduce_mean(tf.abs(image[:, :-1] - image[:, 1:]), -1, keepdims=True)
    return _damped_variation(disp, tf.stop_gradient(tf.exp(-image_dx)),
                             tf.stop_gradient(tf.exp(-image_dy)))


@tf.custom_gradient
def _damped_variation(disp, weight_x, weight_y):
    """``mean(|d disp/dx| * weight_x) + mean(|d disp/dy| * weight_y)`` with forward differences;
    ``disp`` ``[B, H, W, 1]``, the weights ``[B, H, W - 1, 1]`` and ``[B, H - 1, W, 1]``.

    The gradient is written out: each difference's ``sign * weight / count`` goes to its first
    pixel and, negated, to its second; TensorFlow's own pads a zero map per slice instead.
    """
    dx = disp[:, :, :-1] - disp[:, :, 1:]
    dy = disp[:, :-1] - disp[:, 1:]
    total = tf.reduce_mean(tf.abs(dx) * weight_x) + tf.reduce_mean(tf.abs(dy) * weight_y)

    def gradient(upstream):
        count_x, count_y = tf.cast(tf.size(dx), disp.dtype), tf.cast(tf.size(dy), disp.dtype)
        per_x = tf.sign(dx) * weight_x * (upstream / count_x)
        per_y = tf.sign(dy) * weight_y * (upstream / count_y)
        grad = (tf.pad(per_x, [[0, 0], [0, 0], [0, 1], [0, 0]])
                - tf.pad(per_x, [[0, 0], [0, 0], [1, 0], [0, 0]])
                + tf.pad(per_y, [[0, 0], [0, 1], [0, 0], [0, 0]])
                - tf.pad(per_y, [[0, 0], [1, 0], [0, 0], [0, 0]]))
        return (grad, tf.abs(dx) * (upstream / count_x), tf.abs(dy) * (upstream / count_y))

    return total, gradient
