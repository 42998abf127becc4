"""TensorBoard scalars and images, written with TensorFlow's own summary ops.

``tf.summary.scalar`` and ``tf.summary.image`` live in the tensorboard package, which
TensorFlow 2.21 no longer installs; the event files are TensorFlow's own, so they are written
here with ``tf.summary.write`` and the two plugins' metadata (a scalar tensor for ``scalars``;
for ``images`` a string vector ``[width, height, png, png, ...]``). ``pip install tensorboard``
is only needed to look at them.
"""

from typing import Sequence

import numpy as np
import tensorflow as tf

from monodepth_tf.inference.colormap import colorize_disparity


def _metadata(plugin: str) -> bytes:
    return tf.compat.v1.SummaryMetadata(
        plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name=plugin)
    ).SerializeToString()


SCALAR_METADATA = _metadata("scalars")
IMAGE_METADATA = _metadata("images")


def write_scalar(name: str, value) -> None:
    """A scalar in the default summary writer at its default step."""
    tf.summary.write(name, tf.cast(value, tf.float32), metadata=SCALAR_METADATA)


def write_images(name: str, images: Sequence[np.ndarray]) -> None:
    """uint8 RGB images ``[H, W, 3]`` of one size, as one image summary."""
    height, width = images[0].shape[:2]
    encoded = [tf.io.encode_png(np.asarray(image, np.uint8)) for image in images]
    tensor = tf.stack([tf.constant(str(width)), tf.constant(str(height)), *encoded])
    tf.summary.write(name, tensor, metadata=IMAGE_METADATA)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] ``[..., 3]`` -> uint8."""
    return np.clip(np.round(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


def disparity_images(disps: np.ndarray) -> list:
    """Disparities ``[B, h, w]`` (or ``[B, h, w, 1]``) -> magma colour images, each normalized
    to its own 95th percentile as the prediction tool draws them."""
    disps = np.asarray(disps)
    if disps.ndim == 4:
        disps = disps[..., 0]
    return [colorize_disparity(d) for d in disps]


def mask_images(masks: np.ndarray) -> list:
    """Masks ``[B, h, w]`` in [0, 1] -> grey images (white = 1)."""
    grey = to_uint8(np.asarray(masks, np.float32))
    return [np.repeat(m[..., None], 3, axis=-1) for m in grey]


def depth_images(depths: np.ndarray) -> list:
    """Depth maps ``[B, h, w]`` (metres, > 0) -> magma colour images of their inverse, drawn
    as :func:`disparity_images` draws a predicted disparity, so the two compare side by side."""
    return disparity_images(1.0 / np.asarray(depths, np.float64))


def side_by_side(panels: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 RGB images ``[H, W_i, 3]`` of one height -> one image ``[H, sum W_i, 3]``, left to
    right."""
    heights = {panel.shape[0] for panel in panels}
    if len(heights) != 1:
        raise ValueError(f"side_by_side: panels of different heights {sorted(heights)}")
    return np.concatenate([np.asarray(panel, np.uint8) for panel in panels], axis=1)
