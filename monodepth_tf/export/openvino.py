"""OpenVINO models of the depth network (``bin/export --openvino``).

An OpenVINO model (IR: ``<name>.xml`` and its weights ``<name>.bin``) runs at the feed size, as
the ONNX and TFLite models do: float32 images ``images`` ``[B, height, width, 3]`` in [0, 1] ->
the scaled disparity ``disparity`` ``[B, height, width]``, of a fixed batch size or of any batch.

It is converted by OpenVINO's own TensorFlow front end from
:class:`~monodepth_tf.inference.folded.FoldedDepthNet` in its ``for_converters`` spelling, so
that OpenVINO sees each padding as one op and keeps its blocked layout through the network. The
weights are stored in float32 (``save_model`` would otherwise compress them to float16).

**Precision.** On a CPU with AMX or AVX512_BF16, OpenVINO computes in bfloat16 unless it is told
otherwise, and the model file cannot tell it. :func:`openvino_runner` compiles with
``INFERENCE_PRECISION_HINT=f32``; pass the same when you compile the model yourself:
``core.compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})``.

The optional dependency comes with ``pip install monodepth_tf[openvino]`` and is imported only
when an OpenVINO model is written or run.
"""

import importlib
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.export.saved_model import INPUT_NAME, ExportError
from monodepth_tf.export.tflite import run_in_batches
from monodepth_tf.geometry.depth import scale_disparity
from monodepth_tf.inference.folded import FoldedDepthNet
from monodepth_tf.networks.depth_net import DepthNet

OUTPUT_NAME = "disparity"
OPENVINO_EXTRA = "monodepth_tf[openvino]"
# What openvino_runner compiles with: float32 arithmetic, whatever the CPU offers.
FLOAT32_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def check_openvino_available(flag: str = "--openvino") -> None:
    """Raises ExportError (one line, naming ``flag`` and the extra to install) when openvino
    cannot be imported."""
    try:
        importlib.import_module("openvino")
    except ImportError:
        raise ExportError(f"{flag} needs openvino, which cannot be imported: "
                          f"pip install '{OPENVINO_EXTRA}'") from None


def write_openvino(depth_net: DepthNet, config: ModelConfig, path,
                   batch_size: Optional[int] = None) -> Path:
    """Writes the feed-size disparity function of ``depth_net`` as an OpenVINO model: ``path``
    (the ``.xml``) and its ``.bin`` beside it. Both are written under temporary names and
    renamed, the ``.bin`` first, so an ``.xml`` that exists has its weights.

    Args:
        depth_net, config: a loaded depth network and its config (feed size, depth range).
        path: the ``.xml`` file to write.
        batch_size: the model's fixed batch size; None: any batch.

    Raises:
        ExportError: openvino is missing, or a batch size below 1.
    """
    check_openvino_available()
    if batch_size is not None and int(batch_size) < 1:
        raise ExportError(f"--openvino_batch_size must be at least 1, got {batch_size}")
    import openvino

    path = Path(path)
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
    staging = path.with_name(f".{path.stem}.tmp.xml")
    try:
        openvino.save_model(model, str(staging), compress_to_fp16=False)
        staging.with_suffix(".bin").replace(path.with_suffix(".bin"))
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)
        staging.with_suffix(".bin").unlink(missing_ok=True)
    return path


def openvino_runner(path, num_threads: Optional[int] = None
                    ) -> Callable[[np.ndarray], np.ndarray]:
    """A function running an OpenVINO model on the CPU in float32: float32 ``[B, height, width,
    3]`` -> ``[B, height, width]`` disparity. A model of fixed batch b runs the images b at a
    time (:func:`monodepth_tf.export.tflite.run_in_batches`).

    Args:
        path: the ``.xml`` file.
        num_threads: OpenVINO's inference threads (None: its default, one per core).
    """
    check_openvino_available("running an OpenVINO model")
    import openvino

    config: Dict[str, object] = {**FLOAT32_CONFIG, "PERFORMANCE_HINT": "LATENCY"}
    if num_threads:
        config["INFERENCE_NUM_THREADS"] = int(num_threads)
    compiled = openvino.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    batch = compiled.inputs[0].get_partial_shape()[0]
    fixed_batch = batch.get_length() if batch.is_static else None

    def invoke(images: np.ndarray) -> np.ndarray:
        outputs = request.infer({INPUT_NAME: np.ascontiguousarray(images, np.float32)})
        return np.array(outputs[OUTPUT_NAME])  # a copy: the request reuses its buffer

    return lambda images: run_in_batches(invoke, images, fixed_batch, "OpenVINO")
