"""Networks trained from scratch start as the original's do: PyTorch's default conv init."""

import numpy as np
import tensorflow as tf

from monodepth_tf.networks.layers import PaddedConv2D


def test_conv_weights_and_bias_are_uniform_within_one_over_root_fan_in():
    layer = PaddedConv2D(64, 3, pad=1)
    layer(tf.zeros([1, 8, 8, 32]))
    bound = 1 / np.sqrt(32 * 9)
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
    # a uniform distribution on [-b, b] has std b / sqrt(3); 18432 draws pin it within 3%
    assert abs(kernel.std() / (bound / np.sqrt(3)) - 1) < 0.03
    assert abs(np.abs(bias).max() / bound - 1) < 0.2  # the bias spans its range too


def test_explicit_initializers_are_kept():
    layer = PaddedConv2D(4, 1, kernel_initializer="ones", bias_initializer="zeros")
    layer(tf.zeros([1, 2, 2, 3]))
    np.testing.assert_array_equal(layer.kernel.numpy(), 1.0)
    np.testing.assert_array_equal(layer.bias.numpy(), 0.0)
