"""ONNX models of the depth network, through Keras 3's own exporter (``model.export(...,
format="onnx")``, which converts with tf2onnx).

An ONNX model runs at the feed size, as the TFLite models do: float32 images ``images``
``[B, height, width, 3]`` in [0, 1] -> the scaled disparity ``disparity`` ``[B, height, width]``
(``disp_to_depth`` of the network's sigmoid output, with the weights folder's depth range), of a
fixed batch size or of any batch. The optional dependencies (tf2onnx, onnx, onnxruntime) come
with ``pip install monodepth_tf[onnx]``; they are imported only when an ONNX model is written or
run.
"""

import importlib
from pathlib import Path
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.export.saved_model import INPUT_NAME, ExportError
from monodepth_tf.geometry.depth import disp_to_depth
from monodepth_tf.inference.batching import run_in_batches
from monodepth_tf.networks.depth_net import DepthNet

ONNX_MODULES = ("tf2onnx", "onnx", "onnxruntime")
OUTPUT_NAME = "disparity"
ONNX_EXTRA = "monodepth_tf[onnx]"


class FeedSizeDisparity(keras.Model):
    """A depth network and its depth range as one Keras model: the function the ONNX (and
    TFLite) models hold.

    Args:
        depth_net: a built, loaded depth network.
        min_depth, max_depth: the depth range of ``disp_to_depth``.

    Call:
        images float32 ``[B, height, width, 3]`` in [0, 1].

    Returns:
        The scaled disparity ``[B, height, width]``.
    """

    def __init__(self, depth_net: DepthNet, min_depth: float, max_depth: float, **kwargs):
        super().__init__(**kwargs)
        self.depth_net = depth_net
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)

    def call(self, images):
        disp = self.depth_net(images, training=False)[0][..., 0]
        return disp_to_depth(disp, self.min_depth, self.max_depth)[0]


def check_onnx_available(flag: str = "--onnx") -> None:
    """Raises ExportError (one line, naming ``flag`` and the extra to install) when tf2onnx,
    onnx or onnxruntime cannot be imported."""
    for name in ONNX_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ExportError(f"{flag} needs {', '.join(ONNX_MODULES)}, and {name} cannot be "
                              f"imported: pip install '{ONNX_EXTRA}'") from None


def write_onnx(depth_net: DepthNet, config: ModelConfig, path,
               batch_size: Optional[int] = None) -> Path:
    """Writes the feed-size disparity function of ``depth_net`` as an ONNX model at ``path``
    (through a temporary sibling renamed into place).

    Args:
        depth_net, config: a loaded depth network and its config (feed size, depth range).
        path: the ``.onnx`` file to write.
        batch_size: the model's fixed batch size; None: any batch.

    Raises:
        ExportError: the ONNX packages are missing, or a batch size below 1.
    """
    check_onnx_available()
    if batch_size is not None and int(batch_size) < 1:
        raise ExportError(f"--onnx_batch_size must be at least 1, got {batch_size}")
    path = Path(path)
    model = FeedSizeDisparity(depth_net, config.min_depth, config.max_depth)
    spec = tf.TensorSpec([batch_size, int(config.height), int(config.width), 3], tf.float32,
                         name=INPUT_NAME)
    model(tf.zeros([1, int(config.height), int(config.width), 3]))  # built, as export wants
    staging = path.with_name(f".{path.name}.tmp")
    try:
        model.export(str(staging), format="onnx", input_signature=[spec], verbose=False)
        _rename_output(staging, OUTPUT_NAME)
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)
    return path


def _rename_output(path: Path, name: str) -> None:
    """Renames the single output of the ONNX model at ``path`` (tf2onnx names it after the
    graph's last op, ``Identity:0``) to ``name``, in place."""
    import onnx

    model = onnx.load(str(path))
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [name if value == old else value for value in node.output]
        node.input[:] = [name if value == old else value for value in node.input]
    model.graph.output[0].name = name
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def onnx_runner(path, num_threads: Optional[int] = None
                ) -> Callable[[np.ndarray], np.ndarray]:
    """A function running an ONNX model under onnxruntime (CPU): float32 ``[B, height, width,
    3]`` -> ``[B, height, width]`` disparity. A model of fixed batch b runs the images b at a
    time (:func:`monodepth_tf.inference.batching.run_in_batches`).

    Args:
        path: the ``.onnx`` file.
        num_threads: onnxruntime's intra-op threads (None: its default, one per core).
    """
    check_onnx_available("running an ONNX model")
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = int(num_threads)
    session = onnxruntime.InferenceSession(str(path), options,
                                           providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    batch = feed.shape[0]
    fixed_batch = batch if isinstance(batch, int) else None

    def invoke(images: np.ndarray) -> np.ndarray:
        return session.run(None, {feed.name: images})[0]

    return lambda images: run_in_batches(invoke, images, fixed_batch, "ONNX")
