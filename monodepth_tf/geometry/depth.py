"""Disparity and depth: the network's sigmoid output to scaled disparity and depth."""

from typing import Tuple

import tensorflow as tf


def disp_to_depth(disp: tf.Tensor, min_depth: float, max_depth: float) -> Tuple[tf.Tensor, tf.Tensor]:
    """Maps the network's sigmoid output to a disparity in [1/max_depth, 1/min_depth].

    Returns:
        ``(scaled_disp, depth)`` with ``depth = 1 / scaled_disp``, shapes as ``disp``.
    """
    scaled_disp = scale_disparity(disp, min_depth, max_depth)
    return scaled_disp, reciprocal(scaled_disp)


def scale_disparity(disp: tf.Tensor, min_depth: float, max_depth: float) -> tf.Tensor:
    """The first half of :func:`disp_to_depth`: the sigmoid output mapped to
    ``[1/max_depth, 1/min_depth]``."""
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    return min_disp + (max_disp - min_disp) * disp


def reciprocal(x: tf.Tensor) -> tf.Tensor:
    """``1 / x``, correctly rounded in graphs too (``x`` nonzero; a zero gives 0, not inf).

    Inside a ``tf.function`` grappler's constant folding (on by default; the Trainer turns it
    off, see ``training.keep_graph_arithmetic``) turns ``1.0 / x`` into a Reciprocal op, which
    TensorFlow's CPU kernel evaluates with an approximation: a quarter of float32 results come
    out an ulp away from the division the original (and eager TensorFlow) computes. A division
    grappler leaves alone keeps the depths of prediction and evaluation graphs exact too.
    """
    return tf.math.divide_no_nan(tf.ones_like(x), x)
