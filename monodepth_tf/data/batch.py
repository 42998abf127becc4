"""The named structures that flow from the data pipeline to the networks and the loss.

Frames are named by string keys: ``"0"`` the target frame, ``"-1"``/``"1"`` (any signed offset)
temporal neighbours, ``"s"`` the other camera of the stereo pair (see
:mod:`monodepth_tf.data.frames`). Per-scale quantities are tuples
indexed by scale ``s`` (scale ``s`` is ``1 / 2**s`` of the network input size). All images are
NHWC float32 RGB in [0, 1].
"""

from typing import Dict, NamedTuple, Tuple

import tensorflow as tf



class Batch(NamedTuple):
    """One batch as the networks and the loss see it.

    Attributes:
        color: ``{frame key: (scale 0 [B, H, W, 3], scale 1 [B, H/2, W/2, 3], ...)}`` the
            unaugmented images, which the loss compares.
        color_aug: ``{frame key: [B, H, W, 3]}`` the colour-jittered scale-0 images, which feed
            the networks.
        K: per scale, ``[B, 4, 4]`` camera intrinsics in pixels of that scale.
        inv_K: per scale, ``[B, 4, 4]`` their inverses.
        stereo_T: ``[B, 4, 4]`` the transform from the target camera to the other stereo camera
            (identity with x-translation +-0.1; the sign follows the side and the flip).
    """

    color: Dict[str, Tuple[tf.Tensor, ...]]
    color_aug: Dict[str, tf.Tensor]
    K: Tuple[tf.Tensor, ...]
    inv_K: Tuple[tf.Tensor, ...]
    stereo_T: tf.Tensor
