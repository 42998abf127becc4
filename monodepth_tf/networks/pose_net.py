"""The pose networks as assembled for training and prediction: a separate pose network
(ResNet encoder + pose decoder, or PoseCNN), or the ``shared`` decoder on the depth encoder.
"""

from typing import Optional, Sequence, Tuple

import keras
import tensorflow as tf

from monodepth_tf.config import SEPARATE_POSE_MODEL_TYPES, ModelConfig, PoseModelType
from monodepth_tf.networks.pose_cnn import PoseCNN
from monodepth_tf.networks.pose_decoder import PoseDecoder
from monodepth_tf.networks.presets import load_preset
from monodepth_tf.networks.resnet_encoder import ResnetEncoder


@keras.saving.register_keras_serializable(package="monodepth_tf")
class PoseNet(keras.Model):
    """A separate pose network: a ResNet pose encoder + pose decoder, or the original's PoseCNN.

    Args:
        num_layers: ResNet depth of the pose encoder (``separate_resnet``).
        num_input_frames: frames stacked on the channel axis (2 for ``pairs``).
        pose_model_type: ``separate_resnet`` or ``posecnn``.

    Call:
        frames ``[B, H, W, 3 * num_input_frames]``, earlier frame first.

    Returns:
        axisangle, translation: ``[B, num_frames, 1, 3]`` each (num_frames = 2 for the ResNet
        pose decoder, as the original builds it; ``num_input_frames - 1`` for PoseCNN).

    Attributes:
        config: the weights' :class:`ModelConfig` (feed size, depth range) of a network from
            :meth:`from_preset`; None otherwise.
    """

    config: Optional[ModelConfig] = None

    def __init__(self, num_layers=18, num_input_frames=2, pose_model_type="separate_resnet",
                 **kwargs):
        super().__init__(**kwargs)
        if pose_model_type not in SEPARATE_POSE_MODEL_TYPES:
            raise ValueError(f"PoseNet is separate_resnet or posecnn, got {pose_model_type!r} "
                             "(the shared pose decoder runs on the depth encoder's features)")
        self.num_layers = num_layers
        self.num_input_frames = num_input_frames
        self.pose_model_type = PoseModelType(pose_model_type).value
        if self.pose_model_type == PoseModelType.SEPARATE_RESNET:
            self.encoder = ResnetEncoder(num_layers, num_input_frames, name="pose_encoder")
            self.decoder = PoseDecoder(self.encoder.num_ch_enc, 1, 2, name="pose")
        else:
            self.cnn = PoseCNN(num_input_frames, name="pose")

    @classmethod
    def from_preset(cls, name: str) -> "PoseNet":
        """The pose network of a released model, e.g. ``PoseNet.from_preset("mono_640x192")``
        (downloaded on first use), with its ``config``.

        Raises:
            ValueError: an unknown name, or a model without a pose network (stereo-only); the
                zoo's errors.
        """
        return load_preset(name, pose=True)[1]

    def call(self, frames, training=None) -> Tuple[tf.Tensor, tf.Tensor]:
        if self.pose_model_type == PoseModelType.POSECNN:
            return self.cnn(frames)
        return self.decoder([self.encoder(frames, training=training)])

    def start_translations_at(self, z: float) -> None:
        """Starts every predicted translation around ``(0, 0, z)`` (see
        pose_decoder.start_translations_at)."""
        head = self.cnn if self.pose_model_type == PoseModelType.POSECNN else self.decoder
        head.start_translations_at(z)

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, num_input_frames=self.num_input_frames,
                      pose_model_type=self.pose_model_type)
        return config


def build_shared_pose_decoder(num_ch_enc: Sequence[int], num_pose_frames: int) -> PoseDecoder:
    """The ``shared`` pose decoder: on the depth encoder's features of each of the frames."""
    decoder = PoseDecoder(num_ch_enc, num_pose_frames, name="pose")
    features = [tf.zeros([1, 2 ** (5 - i), 2 ** (5 - i), c]) for i, c in enumerate(num_ch_enc)]
    decoder([features] * num_pose_frames)
    return decoder
