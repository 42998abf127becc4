"""The depth network: a ResNet encoder and the depth decoder, as one Keras model."""

from typing import List, Optional

import keras
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.networks.depth_decoder import DepthDecoder
from monodepth_tf.networks.presets import load_preset
from monodepth_tf.networks.resnet_encoder import ResnetEncoder


@keras.saving.register_keras_serializable(package="monodepth_tf")
class DepthNet(keras.Model):
    """ResNet encoder + depth decoder.

    Args:
        num_layers: ResNet depth of the encoder.
        scales: decoder output scales.

    Call:
        images ``[B, H, W, 3]`` RGB in [0, 1] (H, W multiples of 32).

    Returns:
        Sigmoid disparities, one per scale, ``[B, H/2**s, W/2**s, 1]``.

    Attributes:
        config: the weights' :class:`ModelConfig` (feed size, depth range) of a network from
            :meth:`from_preset`; None otherwise.
    """

    config: Optional[ModelConfig] = None

    def __init__(self, num_layers=18, scales=(0, 1, 2, 3), **kwargs):
        super().__init__(**kwargs)
        self.num_layers = num_layers
        self.scales = list(scales)
        self.encoder = ResnetEncoder(num_layers, name="encoder")
        self.decoder = DepthDecoder(self.encoder.num_ch_enc, self.scales, name="depth")

    @classmethod
    def from_preset(cls, name: str) -> "DepthNet":
        """The depth network of a released model, e.g. ``DepthNet.from_preset("mono_640x192")``
        (downloaded on first use; names: :func:`monodepth_tf.weights.zoo.names`), with its
        ``config``.

        Raises:
            ValueError: an unknown name (the message lists the known ones); the zoo's errors.
        """
        return load_preset(name)[1]

    def call(self, images, training=None) -> List[tf.Tensor]:
        return self.decoder(self.encoder(images, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, scales=self.scales)
        return config
