"""The depth decoder: U-Net up-convolutions with skips and sigmoid disparity heads."""

import math
from typing import List, Sequence

import keras
import tensorflow as tf

from monodepth_tf.networks.layers import HEAD_DTYPE, conv3x3_reflect, upsample_nearest

DECODER_CHANNELS = (16, 32, 64, 128, 256)


@keras.saving.register_keras_serializable(package="monodepth_tf")
class DepthDecoder(keras.Model):
    """Monodepth2's depth decoder.

    Five stages i = 4..0, each: ELU(conv3x3) -> nearest x2 upsampling -> concatenation with
    encoder feature i-1 (for i > 0) -> ELU(conv3x3), with DECODER_CHANNELS[i] channels; the
    stages i in ``scales`` end in a sigmoid head (reflection-padded 3x3 conv; in float32 under
    mixed precision too, see ``layers.HEAD_DTYPE``).

    Args:
        num_ch_enc: channels of the five encoder feature maps.
        scales: the scales that get an output (scale s is 1/2**s of the input).
        num_output_channels: 1 for disparity (the predictive mask uses one per source frame).
        use_skips: concatenate the encoder features.

    Call:
        features: the encoder's five maps (``[B, H/2, W/2, c0]`` ... ``[B, H/32, W/32, c4]``).

    Returns:
        A list, in the order of ``scales``, of sigmoid outputs
        ``[B, H/2**s, W/2**s, num_output_channels]`` in (0, 1).
    """

    def __init__(self, num_ch_enc, scales=(0, 1, 2, 3), num_output_channels=1, use_skips=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_ch_enc = [int(c) for c in num_ch_enc]
        self.scales = [int(s) for s in scales]
        bad = [s for s in self.scales if s not in range(4)]
        if bad:
            raise ValueError(f"decoder scales must be among 0, 1, 2, 3; got {bad}")
        self.num_output_channels = num_output_channels
        self.use_skips = use_skips
        # Lists indexed by stage i and by position in `scales` (checkpoints track lists).
        self.upconvs = [[conv3x3_reflect(DECODER_CHANNELS[i], f"upconv_{i}_{j}") for j in (0, 1)]
                        for i in range(5)]
        self.dispconvs = [conv3x3_reflect(num_output_channels, f"dispconv_{s}", dtype=HEAD_DTYPE)
                          for s in self.scales]

    def call(self, features: Sequence[tf.Tensor]) -> List[tf.Tensor]:
        if len(features) != 5:
            raise ValueError(f"the depth decoder takes 5 encoder feature maps, got {len(features)}")
        outputs = {}
        x = features[-1]
        for i in range(4, -1, -1):
            first, second = self.upconvs[i]
            x = upsample_nearest(tf.nn.elu(first(x)))
            if self.use_skips and i > 0:
                x = tf.concat([x, features[i - 1]], axis=-1)
            x = tf.nn.elu(second(x))
            if i in self.scales:
                outputs[i] = tf.sigmoid(self.dispconvs[self.scales.index(i)](x))
        return [outputs[s] for s in self.scales]

    def start_disparities_at(self, value: float) -> None:
        """Sets every disparity head's bias to ``logit(value)``, so that a fresh decoder's
        sigmoid outputs start around ``value`` instead of 0.5 (an initialization: what the
        decoder computes from its weights is unchanged). See training.checkpoints.SCRATCH_DISPARITY.

        Args:
            value: the sigmoid output to start at, in (0, 1).
        """
        if not 0.0 < value < 1.0:
            raise ValueError(f"a sigmoid disparity must lie in (0, 1), got {value}")
        for conv in self.dispconvs:
            conv.bias.assign(tf.fill(conv.bias.shape, math.log(value / (1.0 - value))))

    def torch_modules(self, prefix: str = "decoder"):
        """Pairs (PyTorch state-dict prefix, Keras layer) for the weight importer.

        The original registers its convolutions in one ModuleList in this order: upconv (4, 0),
        (4, 1), (3, 0), ..., (0, 1), then the disparity heads in scale order.
        """
        pairs, index = [], 0
        for i in range(4, -1, -1):
            for conv in self.upconvs[i]:
                pairs.append((f"{prefix}.{index}.conv.conv", conv))
                index += 1
        for conv in self.dispconvs:
            pairs.append((f"{prefix}.{index}.conv", conv))
            index += 1
        return pairs

    def get_config(self):
        config = super().get_config()
        config.update(num_ch_enc=self.num_ch_enc, scales=self.scales,
                      num_output_channels=self.num_output_channels, use_skips=self.use_skips)
        return config
