"""OpenVINO models of the depth network (``bin/export --openvino``): the model of
:mod:`monodepth_tf.inference.openvino` (float32 images ``images`` ``[B, height, width, 3]`` in
[0, 1] -> the scaled disparity ``disparity`` ``[B, height, width]``) written as OpenVINO IR,
``<name>.xml`` and its weights ``<name>.bin``, in float32 (``save_model`` would otherwise
compress them to float16). Run it in float32: see that module's note on precision.
"""

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from monodepth_tf.config import ModelConfig
from monodepth_tf.export.saved_model import ExportError
from monodepth_tf.inference import openvino as inference_openvino
from monodepth_tf.networks.depth_net import DepthNet

FLOAT32_CONFIG = inference_openvino.FLOAT32_CONFIG


def check_openvino_available(flag: str = "--openvino") -> None:
    """Raises ExportError (one line, naming ``flag`` and the extra to install) when openvino
    cannot be imported."""
    message = inference_openvino.missing_openvino(flag)
    if message:
        raise ExportError(message)


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
    model = inference_openvino.scaled_disparity_model(depth_net, config, batch_size)
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
    """A function running the OpenVINO model at ``path`` (the ``.xml``) on the CPU in float32:
    float32 ``[B, height, width, 3]`` -> ``[B, height, width]`` disparity
    (:func:`monodepth_tf.inference.openvino.disparity_runner`).

    Args:
        path: the ``.xml`` file.
        num_threads: OpenVINO's inference threads (None: its default, one per core).
    """
    check_openvino_available("running an OpenVINO model")
    return inference_openvino.disparity_runner(path, num_threads)
