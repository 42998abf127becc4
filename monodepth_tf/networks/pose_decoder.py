"""The pose decoder: axis-angle and translation from ResNet features of the frames."""

from typing import Sequence, Tuple

import keras
import tensorflow as tf

from monodepth_tf.networks.layers import HEAD_DTYPE, PaddedConv2D


POSE_SCALE = 0.01


def start_translations_at(conv: PaddedConv2D, z: float) -> None:
    """Sets the bias of a pose output convolution (6 raw numbers per frame: axis-angle, then
    translation x, y, z) so that, with :data:`POSE_SCALE`, the translations start around
    ``(0, 0, z)`` and the rotations around 0 (the convolution's weights add a small
    image-dependent part). An initialization: what the layer computes is unchanged.

    Args:
        conv: the 1x1 convolution whose outputs :func:`split_pose` splits.
        z: the starting z translation, in the network's depth units (negative: forward
            motion between an earlier and a later frame).
    """
    channels = conv.bias.shape[0]
    is_z = tf.equal(tf.range(channels) % 6, 5)
    conv.bias.assign(tf.where(is_z, z / POSE_SCALE, 0.0))


def split_pose(raw: tf.Tensor, num_frames: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """``[B, 6 * num_frames]`` raw outputs -> axis-angle and translation ``[B, num_frames, 1, 3]``
    each, scaled by 0.01 as the original does."""
    out = POSE_SCALE * tf.reshape(raw, [-1, num_frames, 1, 6])
    return out[..., :3], out[..., 3:]


@keras.saving.register_keras_serializable(package="monodepth_tf")
class PoseDecoder(keras.Model):
    """Relative camera motion from encoder features.

    A 1x1 squeeze to 256 channels + ReLU on the last feature map of each input, concatenated,
    then two 3x3 convs with ReLU and a 1x1 conv to 6 numbers per predicted frame, averaged over
    the image.

    Args:
        num_ch_enc: channels of the encoder feature maps (only the last is used).
        num_input_features: how many feature lists are given (1 for the separate pose encoder,
            the number of frames for the shared encoder).
        num_frames_to_predict_for: defaults to ``num_input_features - 1``.
        stride: stride of the two 3x3 convs.

    Call:
        features: a list of ``num_input_features`` encoder outputs (each a list of five maps).

    Returns:
        axisangle, translation: ``[B, num_frames_to_predict_for, 1, 3]`` each.
    """

    def __init__(self, num_ch_enc, num_input_features=1, num_frames_to_predict_for=None,
                 stride=1, **kwargs):
        super().__init__(**kwargs)
        self.num_ch_enc = [int(c) for c in num_ch_enc]
        self.num_input_features = num_input_features
        if num_frames_to_predict_for is None:
            num_frames_to_predict_for = num_input_features - 1
        if num_frames_to_predict_for < 1:
            raise ValueError("the pose decoder must predict at least one frame")
        self.num_frames_to_predict_for = num_frames_to_predict_for
        self.stride = stride
        self.squeeze = PaddedConv2D(256, 1, name="squeeze")
        self.convs = [
            PaddedConv2D(256, 3, strides=stride, pad=1, name="pose_0"),
            PaddedConv2D(256, 3, strides=stride, pad=1, name="pose_1"),
            PaddedConv2D(6 * num_frames_to_predict_for, 1, name="pose_2", dtype=HEAD_DTYPE),
        ]

    def call(self, features: Sequence[Sequence[tf.Tensor]]):
        if len(features) != self.num_input_features:
            raise ValueError(f"the pose decoder expects {self.num_input_features} feature lists, "
                             f"got {len(features)}")
        x = tf.concat([tf.nn.relu(self.squeeze(f[-1])) for f in features], axis=-1)
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                x = tf.nn.relu(x)
        return split_pose(tf.reduce_mean(x, axis=[1, 2]), self.num_frames_to_predict_for)

    def start_translations_at(self, z: float) -> None:
        """Starts every predicted translation around ``(0, 0, z)`` (see
        :func:`start_translations_at`)."""
        start_translations_at(self.convs[-1], z)

    def torch_modules(self, prefix: str = "net"):
        """The original keeps squeeze, pose_0, pose_1, pose_2 in one ModuleList named ``net``."""
        return [(f"{prefix}.{i}", layer) for i, layer in enumerate([self.squeeze, *self.convs])]

    def get_config(self):
        config = super().get_config()
        config.update(num_ch_enc=self.num_ch_enc, num_input_features=self.num_input_features,
                      num_frames_to_predict_for=self.num_frames_to_predict_for,
                      stride=self.stride)
        return config
