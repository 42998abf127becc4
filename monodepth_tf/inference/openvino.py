"""The depth network under OpenVINO, in float32: ``bin/predict --runtime openvino`` and the
OpenVINO export (:mod:`monodepth_tf.export.openvino`).

The model is converted by OpenVINO's own TensorFlow front end from
:class:`~monodepth_tf.inference.folded.FoldedDepthNet` in its ``for_converters`` spelling, so
that OpenVINO sees each padding as one op and keeps its blocked layout through the network:
float32 images ``images`` ``[B, height, width, 3]`` in [0, 1] -> the scaled disparity
``disparity`` ``[B, height, width]``, of a fixed batch size or of any batch.

**Precision.** On a CPU with AMX or AVX512_BF16, OpenVINO computes in bfloat16 unless it is told
otherwise, and a model file cannot tell it. :func:`disparity_runner` compiles with
``INFERENCE_PRECISION_HINT=f32``; pass the same when you compile a model yourself:
``core.compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})``.

The optional dependency comes with ``pip install monodepth_tf[openvino]`` and is imported only
here, when a model is converted or run.
"""

import importlib
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.geometry.depth import scale_disparity
from monodepth_tf.inference.batching import run_in_batches
from monodepth_tf.inference.folded import FoldedDepthNet
from monodepth_tf.networks.depth_net import DepthNet

INPUT_NAME = "images"
OUTPUT_NAME = "disparity"
OPENVINO_EXTRA = "monodepth_tf[openvino]"
# What disparity_runner compiles with: float32 arithmetic, whatever the CPU offers.
FLOAT32_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def missing_openvino(flag: str) -> Optional[str]:
    """None when openvino imports; else a one-line message naming ``flag`` and the extra to
    install."""
    try:
        importlib.import_module("openvino")
    except ImportError:
        return (f"{flag} needs openvino, which cannot be imported: "
                f"pip install '{OPENVINO_EXTRA}'")
    return None


def require_openvino(flag: str) -> None:
    """Raises ValueError with :func:`missing_openvino`'s message when openvino cannot be
    imported."""
    missing = missing_openvino(flag)
    if missing:
        raise ValueError(missing)


def scaled_disparity_model(depth_net: DepthNet, config: ModelConfig,
                           batch_size: Optional[int] = None):
    """The OpenVINO model (``openvino.Model``) of ``depth_net``'s scaled disparity at the feed
    size of ``config``, of batch ``batch_size`` (None: any batch)."""
    import openvino

    network = FoldedDepthNet(depth_net, for_converters=True)
    min_depth, max_depth = float(config.min_depth), float(config.max_depth)

    def disparity(images):
        return scale_disparity(network(images)[..., 0], min_depth, max_depth)

    spec = tf.TensorSpec([batch_size, int(config.height), int(config.width), 3], tf.float32,
                         name=INPUT_NAME)
    model = openvino.convert_model(tf.function(disparity, input_signature=[spec],
                                               autograph=False))
    model.inputs[0].get_tensor().set_names({INPUT_NAME})
    model.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    return model


def disparity_runner(model, num_threads: Optional[int] = None
                     ) -> Callable[[np.ndarray], np.ndarray]:
    """A function running an OpenVINO model (an ``openvino.Model`` or an ``.xml`` path) on the
    CPU in float32: float32 ``[B, height, width, 3]`` -> ``[B, height, width]`` disparity. A
    model of fixed batch b runs the images b at a time (:func:`run_in_batches`).

    Args:
        model: the model, or its ``.xml`` file.
        num_threads: OpenVINO's inference threads (None: its default, one per core).
    """
    import openvino

    config: Dict[str, object] = {**FLOAT32_CONFIG, "PERFORMANCE_HINT": "LATENCY"}
    if num_threads:
        config["INFERENCE_NUM_THREADS"] = int(num_threads)
    source = model if isinstance(model, openvino.Model) else str(model)
    compiled = openvino.Core().compile_model(source, "CPU", config)
    request = compiled.create_infer_request()
    batch = compiled.inputs[0].get_partial_shape()[0]
    fixed_batch = batch.get_length() if batch.is_static else None

    def invoke(images: np.ndarray) -> np.ndarray:
        outputs = request.infer({INPUT_NAME: np.ascontiguousarray(images, np.float32)})
        return np.array(outputs[OUTPUT_NAME])  # a copy: the request reuses its buffer

    return lambda images: run_in_batches(invoke, images, fixed_batch, "OpenVINO")
