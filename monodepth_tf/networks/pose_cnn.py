"""The original's small PoseCNN: seven stride-2 convolutions on stacked frames."""

import keras
import tensorflow as tf

from monodepth_tf.networks.layers import HEAD_DTYPE, PaddedConv2D, check_divisible
from monodepth_tf.networks.pose_decoder import split_pose, start_translations_at


# (output channels, kernel, padding) of PoseCNN's seven stride-2 convolutions.
POSECNN_LAYERS = ((16, 7, 3), (32, 5, 2), (64, 3, 1), (128, 3, 1), (256, 3, 1), (256, 3, 1),
                  (256, 3, 1))


@keras.saving.register_keras_serializable(package="monodepth_tf")
class PoseCNN(keras.Model):
    """The original's ``posecnn`` pose model: seven stride-2 convs with ReLU on stacked frames.

    Args:
        num_input_frames: frames concatenated along channels; predicts ``num_input_frames - 1``.

    Call:
        images ``[B, H, W, 3 * num_input_frames]`` in [0, 1] (not normalized, as the original).

    Returns:
        axisangle, translation: ``[B, num_input_frames - 1, 1, 3]`` each.
    """

    def __init__(self, num_input_frames=2, **kwargs):
        super().__init__(**kwargs)
        if num_input_frames < 2:
            raise ValueError("PoseCNN needs at least two input frames")
        self.num_input_frames = num_input_frames
        self.convs = [PaddedConv2D(c, k, strides=2, pad=p, name=f"conv_{i}")
                      for i, (c, k, p) in enumerate(POSECNN_LAYERS)]
        self.pose_conv = PaddedConv2D(6 * (num_input_frames - 1), 1, name="pose_conv",
                                      dtype=HEAD_DTYPE)

    def call(self, images):
        check_divisible(images, 32, "PoseCNN input images")
        x = images
        for conv in self.convs:
            x = tf.nn.relu(conv(x))
        x = self.pose_conv(x)
        return split_pose(tf.reduce_mean(x, axis=[1, 2]), self.num_input_frames - 1)

    def start_translations_at(self, z: float) -> None:
        """Starts every predicted translation around ``(0, 0, z)`` (see
        pose_decoder.start_translations_at)."""
        start_translations_at(self.pose_conv, z)

    def torch_modules(self, prefix: str = ""):
        """The original: ``net.0`` .. ``net.6`` convolutions and ``pose_conv``."""
        dot = f"{prefix}." if prefix else ""
        pairs = [(f"{dot}net.{i}", conv) for i, conv in enumerate(self.convs)]
        return pairs + [(f"{dot}pose_conv", self.pose_conv)]

    def get_config(self):
        config = super().get_config()
        config.update(num_input_frames=self.num_input_frames)
        return config
