"""The folded inference network (monodepth_tf.inference.folded): nearest upsampling folded into
a transposed convolution against NumPy in float64, edge padding by hand, and FoldedDepthNet's
disparity against the Keras network's, on weights whose sigmoid is not saturated (fresh
weights with randomized BatchNorm statistics, ResNet-18 and -50) and on the reference weights,
in both spellings (TensorFlow's and the converters')."""

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.inference.folded import (FoldedDepthNet, edge_pad, upsample_and_convolve,
                                           upsampling_kernel)
from monodepth_tf.networks.depth_net import DepthNet
from monodepth_tf.networks.layers import build
from monodepth_tf.weights.folder import load_networks
from tests.helpers import SMALL


def numpy_upsample_conv(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Nearest x2 upsampling, reflection padding of 1 and a 3x3 'valid' convolution, in
    float64 with explicit loops over the taps: ``[B, H, W, C] -> [B, 2H, 2W, O]``."""
    up = np.repeat(np.repeat(np.asarray(x, np.float64), 2, axis=1), 2, axis=2)
    padded = np.pad(up, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    height, width = up.shape[1:3]
    out = np.zeros(up.shape[:3] + (kernel.shape[-1],))
    for dy in range(3):
        for dx in range(3):
            out += padded[:, dy:dy + height, dx:dx + width] @ np.asarray(kernel[dy, dx],
                                                                         np.float64)
    return out


@pytest.mark.parametrize("for_converters", [False, True])
def test_upsampling_convolution_matches_numpy(for_converters):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 7, 6)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 6, 4)).astype(np.float32)
    expected = numpy_upsample_conv(x, kernel)
    got = upsample_and_convolve(tf.constant(x), tf.constant(
        upsampling_kernel(kernel).astype(np.float32)), for_converters).numpy()
    assert got.shape == (2, 10, 14, 4)
    # float32 sums of 6 x 16 products of unit normals: about 1e-6 of the values' scale
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * np.abs(expected).max())


def test_upsampling_kernel_by_hand():
    """One input and one output channel: the 1-D kernel [w2, w1 + w2, w0 + w1, w0] per axis."""
    kernel = np.arange(1.0, 10.0).reshape(3, 3, 1, 1)  # rows (1 2 3), (4 5 6), (7 8 9)
    folded = upsampling_kernel(kernel)[:, :, 0, 0]
    rows = np.array([[7, 8, 9], [11, 13, 15], [5, 7, 9], [1, 2, 3]], np.float64)
    columns = np.stack([rows[:, 2], rows[:, 1] + rows[:, 2], rows[:, 0] + rows[:, 1],
                        rows[:, 0]], axis=1)
    np.testing.assert_array_equal(folded, columns)
    assert folded[1, 1] == 13 + 15 and folded[0, 3] == 7


@pytest.mark.parametrize("by_slices", [True, False])
def test_edge_pad_repeats_the_border(by_slices):
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
    expected = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="edge")
    np.testing.assert_array_equal(edge_pad(tf.constant(x), by_slices).numpy(), expected)


def unsaturated_network(num_layers: int, seed: int) -> DepthNet:
    """A fresh depth network with BatchNorm statistics drawn at random (so that folding them
    changes the kernels), built at the small feed size, its scale-0 head's kernel scaled up 20x
    so that its disparity spreads over most of the sigmoid's range instead of sitting at
    0.5 +- 0.01, without saturating it."""
    tf.keras.utils.set_random_seed(seed)
    network = build(DepthNet(num_layers), 3, SMALL["height"], SMALL["width"])
    rng = np.random.default_rng(seed)
    for variable in network.variables:
        if variable.path.endswith("moving_mean"):
            variable.assign(rng.normal(0, 0.2, variable.shape).astype(np.float32))
        elif variable.path.endswith("moving_variance"):
            variable.assign(rng.uniform(0.5, 2.0, variable.shape).astype(np.float32))
        elif variable.path.endswith("gamma"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype(np.float32))
    head = network.decoder.dispconvs[0]
    head.kernel.assign(head.kernel * 20.0)
    return network


def random_images(seed: int, batch: int = 2) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).uniform(
        size=(batch, SMALL["height"], SMALL["width"], 3)).astype(np.float32))


@pytest.mark.parametrize("num_layers", [18, 50])
@pytest.mark.parametrize("for_converters", [False, True])
def test_folded_network_follows_keras_unsaturated(num_layers, for_converters):
    network = unsaturated_network(num_layers, seed=num_layers)
    images = random_images(1)
    expected = network(images, training=False)[0].numpy()
    assert 0.05 < expected.std() and 0.01 < expected.min() and expected.max() < 0.99
    got = FoldedDepthNet(network, for_converters)(images).numpy()
    assert got.shape == expected.shape and got.dtype == np.float32
    # Measured 6.3e-7 at most (sigmoid std 0.09-0.13); a misplaced tap or an unfolded
    # BatchNorm moves it by orders of magnitude more.
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)


def test_folded_network_follows_keras_on_the_reference_weights(reference_dir):
    """The reference weights (randomized BatchNorm statistics, a disparity spanning a decade):
    their logits amplify summation-order differences (TensorFlow's own graph and eager calls
    differ by up to 4e-4 relative, tests/test_export.py)."""
    _, depth, _ = load_networks(reference_dir, with_pose=False)
    images = random_images(2, batch=1)
    expected = depth(images, training=False)[0].numpy()
    assert expected.max() / expected.min() > 10
    for for_converters in (False, True):
        got = FoldedDepthNet(depth, for_converters)(images).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-7)


def test_a_network_without_the_full_resolution_output_is_refused():
    network = build(DepthNet(18, scales=[1, 2]), 3, SMALL["height"], SMALL["width"])
    with pytest.raises(ValueError, match="no scale-0 output"):
        FoldedDepthNet(network)
