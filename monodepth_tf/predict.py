"""Depth prediction with a loaded network: images in, scaled disparities out."""

from typing import Iterable

import numpy as np
import tensorflow as tf

from monodepth_tf.geometry import disp_to_depth
from monodepth_tf.models import DepthNet
from monodepth_tf.weights.folder import NetworkConfig


def predict_disparity(depth_net: DepthNet, config: NetworkConfig, images: Iterable[np.ndarray],
                      batch_size: int = 8, post_process: bool = False) -> np.ndarray:
    """Scaled disparities ``[N, height, width]`` at the network's feed size.

    Args:
        depth_net: a loaded depth network.
        config: its weights folder's config (feed size, depth range).
        images: uint8 RGB images ``[H, W, 3]`` of any size; resized to the feed size with
            an antialiased filter, as the original's evaluation does.
        batch_size: images per forward pass.
        post_process: also predict on the mirror image and blend (the original's
            ``--post_process``).
    """
    from monodepth_tf.evaluation import post_process_disparity

    @tf.function
    def forward(batch):
        disp = depth_net(batch, training=False)[0][..., 0]
        return disp_to_depth(disp, config.min_depth, config.max_depth)[0]

    outputs, chunk = [], []

    def flush():
        batch = tf.image.resize(tf.cast(np.stack(chunk), tf.float32) / 255.0,
                                (config.height, config.width), method="area")
        disp = forward(batch).numpy()
        if post_process:
            mirrored = forward(tf.reverse(batch, axis=[2])).numpy()
            disp = post_process_disparity(disp, mirrored[:, :, ::-1])
        outputs.append(disp)
        chunk.clear()

    for image in images:
        chunk.append(image)
        if len(chunk) == batch_size:
            flush()
    if chunk:
        flush()
    return np.concatenate(outputs).astype(np.float32)
