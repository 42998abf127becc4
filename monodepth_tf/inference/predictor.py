"""Depth prediction with a loaded network: images in, scaled disparities out.

Inputs are resized to the network's feed size with Pillow's Lanczos arithmetic on 8-bit images
(:func:`monodepth_tf.data.resize.network_input`, the one resize of every path: the training
pipeline, the SavedModel and int8 calibration use it too), as the original does before its depth network,
both in its evaluation and in its prediction script.
"""

from typing import Iterable, Iterator, List, Sequence, TypeVar

import numpy as np
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.data.resize import network_input
from monodepth_tf.geometry.depth import disp_to_depth
from monodepth_tf.inference import openvino
from monodepth_tf.inference.folded import FoldedDepthNet
from monodepth_tf.inference.post_process import post_process_disparity
from monodepth_tf.networks.depth_net import DepthNet

T = TypeVar("T")
RUNTIMES = ("tensorflow", "openvino")


def prepare_images(images: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """uint8 RGB images ``[H, W, 3]`` (any sizes) -> float32 network input
    ``[B, height, width, 3]`` in [0, 1]."""
    batch = []
    for image in images:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 RGB image [H, W, 3], got {image.dtype} "
                             f"{list(image.shape)}")
        batch.append(network_input(image, height, width).numpy())
    return np.stack(batch)


class DisparityPredictor:
    """A depth network with its feed size and depth range, run in inference mode (as
    :class:`~.folded.FoldedDepthNet` computes it, from the weights the network has now).

    Args:
        depth_net: a loaded depth network.
        config: its weights folder's config (feed size, depth range).
        runtime: ``tensorflow``, or ``openvino`` (the same network converted to OpenVINO and
            run in float32, :mod:`~.openvino`; needs ``pip install monodepth_tf[openvino]``).
    """

    def __init__(self, depth_net: DepthNet, config: ModelConfig, runtime: str = "tensorflow"):
        if runtime not in RUNTIMES:
            raise ValueError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        self.depth_net = depth_net
        self.config = config
        if runtime == "openvino":
            openvino.require_openvino("--runtime=openvino")
            run = openvino.disparity_runner(openvino.scaled_disparity_model(depth_net, config))
            self._disparity = lambda batch: run(batch.numpy())
        else:
            self.network = FoldedDepthNet(depth_net)
            forward = tf.function(self._scaled_disparity, reduce_retracing=True,
                                  autograph=False)
            self._disparity = lambda batch: forward(batch).numpy()

    @property
    def height(self) -> int:
        return self.config.height

    @property
    def width(self) -> int:
        return self.config.width

    def _scaled_disparity(self, batch: tf.Tensor) -> tf.Tensor:
        disp = self.network(batch)[..., 0]
        return disp_to_depth(disp, self.config.min_depth, self.config.max_depth)[0]

    def scaled_disparity(self, batch: np.ndarray, post_process: bool = False) -> np.ndarray:
        """Network input ``[B, height, width, 3]`` in [0, 1] -> scaled disparity
        ``[B, height, width]`` float32.

        Args:
            post_process: also predict on the mirror images and blend (the original's
                ``--post_process``, :func:`~.post_process.post_process_disparity`).
        """
        batch = tf.convert_to_tensor(batch, tf.float32)
        if tuple(batch.shape[1:3]) != (self.height, self.width):
            raise ValueError(f"network input is {batch.shape[1]}x{batch.shape[2]}, the feed "
                             f"size is {self.height}x{self.width}")
        disp = self._disparity(batch)
        if post_process:
            mirrored = self._disparity(tf.reverse(batch, axis=[2]))
            disp = post_process_disparity(disp, mirrored[:, :, ::-1])
        return disp.astype(np.float32)

    def predict_images(self, images: Sequence[np.ndarray], post_process: bool = False) \
            -> np.ndarray:
        """uint8 RGB images ``[H, W, 3]`` -> scaled disparities ``[B, height, width]``."""
        return self.scaled_disparity(prepare_images(images, self.height, self.width),
                                     post_process)

    def iterate(self, images: Iterable[np.ndarray], batch_size: int = 8,
                post_process: bool = False) -> Iterator[np.ndarray]:
        """Predicts ``batch_size`` images at a time, yielding ``[b, height, width]`` per batch."""
        for chunk in batches(images, batch_size):
            yield self.predict_images(chunk, post_process)


def batches(items: Iterable[T], size: int) -> Iterator[List[T]]:
    """Lists of ``size`` consecutive items (the last one may be shorter)."""
    if size < 1:
        raise ValueError(f"batch size {size} must be at least 1")
    chunk: List[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def predict_disparity(depth_net: DepthNet, config: ModelConfig, images: Iterable[np.ndarray],
                      batch_size: int = 8, post_process: bool = False,
                      runtime: str = "tensorflow") -> np.ndarray:
    """Scaled disparities ``[N, height, width]`` at the network's feed size.

    Args:
        depth_net: a loaded depth network.
        config: its weights folder's config (feed size, depth range).
        images: uint8 RGB images ``[H, W, 3]`` of any size; resized to the feed size with
            Pillow's Lanczos filter (:func:`prepare_images`), as the original's evaluation does.
        batch_size: images per forward pass.
        post_process: also predict on the mirror image and blend (the original's
            ``--post_process``).
        runtime: see :class:`DisparityPredictor`.
    """
    predictor = DisparityPredictor(depth_net, config, runtime)
    outputs = list(predictor.iterate(images, batch_size, post_process))
    if not outputs:
        return np.zeros((0, config.height, config.width), np.float32)
    return np.concatenate(outputs)
