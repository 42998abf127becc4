"""The ResNet encoder: torchvision's ResNet-18/34/50/101/152 without its classifier."""

from typing import List

import keras
import tensorflow as tf

from monodepth_tf.networks.layers import PaddedConv2D, check_divisible, pad_spatial
from monodepth_tf.networks.sync_batchnorm import batch_norm

# Blocks per stage and whether the stages use bottleneck blocks, as torchvision lays them out.
RESNET_SPECS = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}

IMAGE_MEAN = 0.45
IMAGE_STD = 0.225


def resnet_spec(num_layers: int):
    if num_layers not in RESNET_SPECS:
        raise ValueError(
            f"num_layers={num_layers} is not a ResNet depth: choose one of {sorted(RESNET_SPECS)}"
        )
    return RESNET_SPECS[num_layers]


def encoder_channels(num_layers: int) -> List[int]:
    """Channels of the five feature maps: 64, 64, 128, 256, 512 (x4 after the first for 50+)."""
    _, bottleneck = resnet_spec(num_layers)
    factor = 4 if bottleneck else 1
    return [64, 64 * factor, 128 * factor, 256 * factor, 512 * factor]


@keras.saving.register_keras_serializable(package="monodepth_tf")
class ResidualBlock(keras.layers.Layer):
    """torchvision's BasicBlock (two 3x3 convs) or Bottleneck (1x1, strided 3x3, 1x1 x4).

    Args:
        planes: the block's inner width; the output has ``planes`` (basic) or ``4 * planes``.
        stride: stride of the block (on the 3x3 conv, as torchvision's ResNet v1.5).
        bottleneck: Bottleneck instead of BasicBlock.
        downsample: project the shortcut with a strided 1x1 conv + BatchNorm.
    """

    def __init__(self, planes, stride=1, bottleneck=False, downsample=False, **kwargs):
        super().__init__(**kwargs)
        self.planes, self.stride = planes, stride
        self.bottleneck, self.downsample = bottleneck, downsample
        if bottleneck:
            self.convs = [
                PaddedConv2D(planes, 1, use_bias=False, name="conv1"),
                PaddedConv2D(planes, 3, strides=stride, pad=1, use_bias=False, name="conv2"),
                PaddedConv2D(planes * 4, 1, use_bias=False, name="conv3"),
            ]
        else:
            self.convs = [
                PaddedConv2D(planes, 3, strides=stride, pad=1, use_bias=False, name="conv1"),
                PaddedConv2D(planes, 3, pad=1, use_bias=False, name="conv2"),
            ]
        self.bns = [batch_norm(f"bn{i + 1}") for i in range(len(self.convs))]
        if downsample:
            out = planes * 4 if bottleneck else planes
            self.down_conv = PaddedConv2D(out, 1, strides=stride, use_bias=False, name="down_conv")
            self.down_bn = batch_norm("down_bn")

    def call(self, x, training=None):
        shortcut = x
        if self.downsample:
            shortcut = self.down_bn(self.down_conv(x), training=training)
        last = len(self.convs) - 1
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            x = bn(conv(x), training=training)
            if i < last:
                x = tf.nn.relu(x)
        return tf.nn.relu(x + shortcut)

    def torch_modules(self, prefix: str):
        """Pairs (PyTorch state-dict prefix, Keras layer) for the weight importer."""
        pairs = []
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            pairs += [(f"{prefix}.conv{i + 1}", conv), (f"{prefix}.bn{i + 1}", bn)]
        if self.downsample:
            pairs += [(f"{prefix}.downsample.0", self.down_conv),
                      (f"{prefix}.downsample.1", self.down_bn)]
        return pairs

    def get_config(self):
        config = super().get_config()
        config.update(planes=self.planes, stride=self.stride, bottleneck=self.bottleneck,
                      downsample=self.downsample)
        return config


@keras.saving.register_keras_serializable(package="monodepth_tf")
class ResnetEncoder(keras.Model):
    """ResNet feature encoder of Monodepth2's depth and pose networks.

    Args:
        num_layers: 18, 34, 50, 101 or 152.
        num_input_images: frames concatenated along channels (the pose encoder takes 2).

    Call:
        images ``[B, H, W, 3 * num_input_images]`` RGB in [0, 1], H and W multiples of 32;
        normalized inside with ``(x - 0.45) / 0.225``.

    Returns:
        Five feature maps ``[B, H/2, W/2, c0]`` (stem after ReLU), ``[B, H/4, W/4, c1]`` (layer1
        after max-pool), ``[B, H/8, W/8, c2]``, ``[B, H/16, W/16, c3]``, ``[B, H/32, W/32, c4]``
        with channels ``encoder_channels(num_layers)``.
    """

    def __init__(self, num_layers=18, num_input_images=1, **kwargs):
        super().__init__(**kwargs)
        blocks, bottleneck = resnet_spec(num_layers)
        if num_input_images < 1:
            raise ValueError(f"num_input_images must be at least 1, got {num_input_images}")
        self.num_layers = num_layers
        self.num_input_images = num_input_images
        self.num_ch_enc = encoder_channels(num_layers)
        self.conv1 = PaddedConv2D(64, 7, strides=2, pad=3, use_bias=False, name="conv1")
        self.bn1 = batch_norm("bn1")
        self.stages = []
        in_channels = 64
        for stage, (count, planes) in enumerate(zip(blocks, (64, 128, 256, 512))):
            out_channels = planes * (4 if bottleneck else 1)
            stage_blocks = []
            for i in range(count):
                stride = 2 if (stage > 0 and i == 0) else 1
                needs_projection = i == 0 and (stride != 1 or in_channels != out_channels)
                stage_blocks.append(ResidualBlock(
                    planes, stride, bottleneck, needs_projection, name=f"layer{stage + 1}_{i}"))
                in_channels = out_channels
            self.stages.append(stage_blocks)

    def call(self, images, training=None):
        check_divisible(images, 32, "encoder input images")
        channels = images.shape[-1]
        if channels is not None and channels != 3 * self.num_input_images:
            raise ValueError(
                f"the encoder expects {3 * self.num_input_images} input channels "
                f"({self.num_input_images} RGB images), got {channels}")
        x = (images - IMAGE_MEAN) / IMAGE_STD
        x = tf.nn.relu(self.bn1(self.conv1(x), training=training))
        features = [x]
        # Max-pool 3x3/2 with symmetric padding 1; the input is post-ReLU (>= 0), so padding with
        # zeros never wins the max and equals PyTorch's -inf padding.
        x = tf.nn.max_pool2d(pad_spatial(x, 1), 3, 2, "VALID")
        for stage_blocks in self.stages:
            for block in stage_blocks:
                x = block(x, training=training)
            features.append(x)
        return features

    def torch_modules(self, prefix: str = "encoder"):
        """Pairs (PyTorch state-dict prefix, Keras layer) for the weight importer; an empty
        prefix gives torchvision's own key names."""
        dot = f"{prefix}." if prefix else ""
        pairs = [(f"{dot}conv1", self.conv1), (f"{dot}bn1", self.bn1)]
        for stage, stage_blocks in enumerate(self.stages):
            for i, block in enumerate(stage_blocks):
                pairs += block.torch_modules(f"{dot}layer{stage + 1}.{i}")
        return pairs

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, num_input_images=self.num_input_images)
        return config
