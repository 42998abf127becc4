"""The depth network's scale-0 disparity at inference, with fewer operations.

:class:`FoldedDepthNet` computes what ``DepthNet(images, training=False)[0]`` computes, from a
snapshot of its weights taken once, rearranged for inference:

- **BatchNorm folded into the convolutions.** At inference a BatchNorm is the affine map
  ``x * s + (beta - mean * s)`` with ``s = gamma / sqrt(var + eps)``, so the encoder's
  convolutions take ``kernel * s`` and a bias (computed in float64, rounded once to float32), and
  the BatchNorm's multiply and add over every activation are gone.
- **Upsampling folded into the decoder's convolutions.** The decoder's second convolution of each
  stage reads a nearest-upsampled, reflection-padded map. Upsampled pixels come in equal pairs,
  so the 3x3 kernel's taps that land on one low-resolution pixel can be summed beforehand: each
  low-resolution pixel feeds a 4x4 block of outputs through the 4x4 kernel
  ``[w2, w1 + w2, w0 + w1, w0]`` (per axis; ``w0..w2`` the 3x3 kernel's rows), a transposed
  convolution of stride 2 (:func:`upsampling_kernel`). Reflection-padding the upsampled map by one
  pixel repeats the low-resolution map's edge, so the low-resolution map is edge-padded
  (:func:`edge_pad`). That is 16 multiplications per input channel and 2x2 outputs instead of 36,
  and the upsampled map is never written.
- **No concatenation with the skip connection.** A convolution of ``concat(up, skip)`` is the sum
  of the convolutions of its parts, so the skip features are convolved on their own and added.
- **Only the scale-0 head.** Prediction, evaluation and serving read the full-resolution
  disparity only.

Two spellings of the same arithmetic: by default the reflection padding is built from slices
and the transposed convolution is cropped by a slice, which TensorFlow's CPU kernels run
fastest; with ``for_converters=True`` both are padding attributes of single ops (``MirrorPad``,
the transposed convolution's explicit padding), which a converter maps onto its own operations:
OpenVINO then keeps its blocked layout from the first convolution to the last instead of
transposing around every slice (:mod:`monodepth_tf.inference.openvino`).

Every step is exact in real arithmetic; in float32 the sums are regrouped, so the disparities
differ from the Keras model's by rounding (tests/test_inference_folded.py bounds it, on
weights whose sigmoid is not saturated too). Speed: benchmarks/inference.py.
"""

from typing import List

import numpy as np
import tensorflow as tf

from monodepth_tf.networks.depth_net import DepthNet
from monodepth_tf.networks.layers import PaddedConv2D, check_divisible, pad_spatial
from monodepth_tf.networks.resnet_encoder import IMAGE_MEAN, IMAGE_STD


def edge_pad(x: tf.Tensor, by_slices: bool = True) -> tf.Tensor:
    """Repeats the outermost rows and columns of ``[B, H, W, C]`` once: ``[B, H+2, W+2, C]``,
    from slices and concatenations (as the reflection padding is built at inference) or, unless
    ``by_slices``, as ``SYMMETRIC`` padding by one pixel (which mirrors the edge pixel itself)."""
    if not by_slices:
        return tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    x = tf.concat([x[:, :1], x, x[:, -1:]], axis=1)
    return tf.concat([x[:, :, :1], x, x[:, :, -1:]], axis=2)


def upsampling_kernel(kernel: np.ndarray) -> np.ndarray:
    """The transposed-convolution kernel ``[4, 4, O, C]`` equal to nearest x2 upsampling followed
    by the 3x3 convolution ``kernel`` ``[3, 3, C, O]`` (see the module docstring), in float64."""
    k = np.asarray(kernel, np.float64)
    rows = np.stack([k[2], k[1] + k[2], k[0] + k[1], k[0]])
    both = np.stack([rows[:, 2], rows[:, 1] + rows[:, 2], rows[:, 0] + rows[:, 1], rows[:, 0]],
                    axis=1)
    return both.transpose(0, 1, 3, 2)


def upsample_and_convolve(x: tf.Tensor, kernel: tf.Tensor, for_converters: bool = False
                          ) -> tf.Tensor:
    """``conv3x3(reflection_pad(upsample_nearest(x)))`` as one transposed convolution.

    Args:
        x: ``[B, H, W, C]``.
        kernel: :func:`upsampling_kernel` of the 3x3 kernel, ``[4, 4, O, C]``.
        for_converters: crop by the op's explicit padding instead of a slice.

    Returns:
        ``[B, 2H, 2W, O]``, without bias.
    """
    height, width = x.shape[1], x.shape[2]
    # The transposed convolution of the edge-padded map spans 2(H+2)+2 rows; row 2i+a of the
    # upsampled convolution is its row 2i+a+3.
    if for_converters:
        shape = tf.stack([tf.shape(x)[0], 2 * height, 2 * width, kernel.shape[2]])
        return tf.nn.conv2d_transpose(edge_pad(x, by_slices=False), kernel, shape, 2,
                                      [[0, 0], [3, 3], [3, 3], [0, 0]])
    full_shape = tf.stack([tf.shape(x)[0], 2 * height + 6, 2 * width + 6, kernel.shape[2]])
    full = tf.nn.conv2d_transpose(edge_pad(x), kernel, full_shape, 2, "VALID")
    return full[:, 3:3 + 2 * height, 3:3 + 2 * width]


def reflection_pad(x: tf.Tensor, pad: int, for_converters: bool = False) -> tf.Tensor:
    """Reflection padding of ``pad`` pixels: a MirrorPad op ``for_converters``, else slices."""
    return pad_spatial(x, pad, "REFLECT", by_slices=not for_converters)


class _Conv(tf.Module):
    """A convolution with a bias, padded as a :class:`PaddedConv2D` pads: the weights of one
    PaddedConv2D, with a BatchNorm after it folded in if given."""

    def __init__(self, conv: PaddedConv2D, batch_norm=None, for_converters: bool = False,
                 name=None):
        super().__init__(name=name)
        kernel = np.asarray(conv.kernel.numpy(), np.float64)
        bias = (np.asarray(conv.bias.numpy(), np.float64) if conv.use_bias
                else np.zeros(kernel.shape[-1]))
        if batch_norm is not None:
            scale = batch_norm.gamma.numpy() / np.sqrt(
                np.asarray(batch_norm.moving_variance.numpy(), np.float64) + batch_norm.epsilon)
            bias = (bias - batch_norm.moving_mean.numpy()) * scale + batch_norm.beta.numpy()
            kernel = kernel * scale
        self.kernel = tf.Variable(kernel.astype(np.float32), trainable=False, name="kernel")
        self.bias = tf.Variable(bias.astype(np.float32), trainable=False, name="bias")
        self.strides = int(conv.strides[0])
        self.pad, self.reflect = conv.pad, conv.pad_mode == "REFLECT"
        self.for_converters = for_converters

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        if self.reflect:
            x = reflection_pad(x, self.pad, self.for_converters)
        else:
            x = pad_spatial(x, self.pad)
        return tf.nn.bias_add(tf.nn.conv2d(x, self.kernel, self.strides, "VALID"), self.bias)


class _UpsamplingConv(tf.Module):
    """The decoder's second convolution of a stage: on ``concat(upsample(x), skip)``, as a
    transposed convolution of ``x`` plus a convolution of ``skip``."""

    def __init__(self, conv: PaddedConv2D, upsampled_channels: int,
                 for_converters: bool = False, name=None):
        super().__init__(name=name)
        self.for_converters = for_converters
        kernel = conv.kernel.numpy()
        self.kernel = tf.Variable(
            upsampling_kernel(kernel[:, :, :upsampled_channels]).astype(np.float32),
            trainable=False, name="kernel")
        self.bias = tf.Variable(conv.bias.numpy(), trainable=False, name="bias")
        self.skip_kernel = None
        if kernel.shape[2] > upsampled_channels:
            self.skip_kernel = tf.Variable(kernel[:, :, upsampled_channels:], trainable=False,
                                           name="skip_kernel")

    def __call__(self, x: tf.Tensor, skip=None) -> tf.Tensor:
        y = upsample_and_convolve(x, self.kernel, self.for_converters)
        if self.skip_kernel is not None:
            y = y + tf.nn.conv2d(reflection_pad(skip, 1, self.for_converters), self.skip_kernel,
                                 1, "VALID")
        return tf.nn.bias_add(y, self.bias)


class FoldedDepthNet(tf.Module):
    """A depth network's full-resolution disparity at inference, from a snapshot of its weights
    (see the module docstring).

    Args:
        depth_net: a built depth network; its weights are read now (load them first).
        for_converters: pad and crop with single ops, for converters (module docstring).

    Call:
        images ``[B, H, W, 3]`` RGB in [0, 1] (H, W multiples of 32), float32.

    Returns:
        The sigmoid disparity at scale 0, ``[B, H, W, 1]`` float32.
    """

    def __init__(self, depth_net: DepthNet, for_converters: bool = False,
                 name="folded_depth_net"):
        super().__init__(name=name)
        encoder, decoder = depth_net.encoder, depth_net.decoder
        if 0 not in decoder.scales:
            raise ValueError(f"the depth network has no scale-0 output (scales {decoder.scales})")
        self.stem = _Conv(encoder.conv1, encoder.bn1, name="stem")  # zero padding only
        self.blocks = []
        for stage in encoder.stages:
            for block in stage:
                self.blocks.append(_Block(block))
        self.first_convs, self.second_convs = [], []
        for i in range(5):
            first, second = decoder.upconvs[i]
            self.first_convs.append(_Conv(first, None, for_converters, name=f"upconv_{i}_0"))
            self.second_convs.append(_UpsamplingConv(second, first.filters, for_converters,
                                                     name=f"upconv_{i}_1"))
        self.use_skips = decoder.use_skips
        self.head = _Conv(decoder.dispconvs[decoder.scales.index(0)], None, for_converters,
                          name="dispconv_0")
        self.stage_ends = np.cumsum([len(stage) for stage in encoder.stages]).tolist()

    def features(self, images: tf.Tensor) -> List[tf.Tensor]:
        """The encoder's five feature maps, as ``ResnetEncoder`` returns them."""
        check_divisible(images, 32, "encoder input images")
        x = tf.nn.relu(self.stem((images - IMAGE_MEAN) / IMAGE_STD))
        features = [x]
        x = tf.nn.max_pool2d(pad_spatial(x, 1), 3, 2, "VALID")  # as ResnetEncoder pools
        for index, block in enumerate(self.blocks, start=1):
            x = block(x)
            if index in self.stage_ends:
                features.append(x)
        return features

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        features = self.features(images)
        x = features[-1]
        for i in range(4, -1, -1):
            x = tf.nn.elu(self.first_convs[i](x))
            skip = features[i - 1] if self.use_skips and i > 0 else None
            x = tf.nn.elu(self.second_convs[i](x, skip))
        return tf.sigmoid(self.head(x))


class _Block(tf.Module):
    """A ResidualBlock with its BatchNorms folded into its convolutions."""

    def __init__(self, block):
        super().__init__(name=block.name)
        self.convs = [_Conv(conv, bn) for conv, bn in zip(block.convs, block.bns)]
        self.down = _Conv(block.down_conv, block.down_bn) if block.downsample else None

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        shortcut = self.down(x) if self.down is not None else x
        for conv in self.convs[:-1]:
            x = tf.nn.relu(conv(x))
        return tf.nn.relu(self.convs[-1](x) + shortcut)
