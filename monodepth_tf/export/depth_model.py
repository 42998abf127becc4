"""Exporting a depth network: the SavedModel TF Serving loads and, on request, TFLite, ONNX
and OpenVINO models beside it.
"""

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np

from monodepth_tf.config import ModelConfig
from monodepth_tf.export.saved_model import (DepthServingModule, ExportError, check_target,
                                             version_dir, write_saved_model)
from monodepth_tf.export.onnx import check_onnx_available, write_onnx
from monodepth_tf.export.openvino import check_openvino_available, write_openvino
from monodepth_tf.export.tflite import convert_tflite
from monodepth_tf.networks.depth_net import DepthNet


@dataclasses.dataclass
class ExportResult:
    """Where an export went.

    Attributes:
        saved_model_dir: ``<export_dir>/<model_name>/<version>``.
        tflite_path: the float32 ``.tflite`` file, if written.
        tflite_quantized_path: the quantized ``.tflite`` file, if written.
        onnx_path: the ``.onnx`` file, if written.
        openvino_path: the OpenVINO ``.xml`` file (its ``.bin`` beside it), if written.
    """

    saved_model_dir: Path
    tflite_path: Optional[Path] = None
    tflite_quantized_path: Optional[Path] = None
    onnx_path: Optional[Path] = None
    openvino_path: Optional[Path] = None


def export_depth_model(depth_net: DepthNet, config: ModelConfig, export_dir,
                       model_name: str = "mdp", version: int = 1, overwrite: bool = False,
                       tflite: bool = False, tflite_quantize: Optional[str] = None,
                       calibration: Optional[np.ndarray] = None, onnx: bool = False,
                       onnx_batch_size: Optional[int] = None, openvino: bool = False,
                       openvino_batch_size: Optional[int] = None) -> ExportResult:
    """Writes the SavedModel ``<export_dir>/<model_name>/<version>/`` and, on request, TFLite,
    ONNX and OpenVINO models beside it (``<model_name>_v<version>[_<quantization>].tflite``,
    ``<model_name>_v<version>.onnx`` and ``<model_name>_v<version>.xml`` + ``.bin`` in
    ``<export_dir>/<model_name>/``, outside the version folder TF Serving loads).

    Args:
        depth_net, config: a loaded depth network and its config.
        export_dir, model_name, version: where to write.
        overwrite: replace an existing version folder (else ExportError).
        tflite: also write the float32 TFLite model.
        tflite_quantize: ``dynamic`` or ``int8``: also write a quantized TFLite model.
        calibration: float32 ``[N, height, width, 3]`` representative images for ``int8``.
        onnx: also write the ONNX model (needs ``pip install monodepth_tf[onnx]``).
        onnx_batch_size: the ONNX model's fixed batch size; None: any batch.
        openvino: also write the OpenVINO model (needs ``pip install monodepth_tf[openvino]``).
        openvino_batch_size: the OpenVINO model's fixed batch size; None: any batch.
    """
    target = version_dir(export_dir, model_name, version)
    if tflite_quantize not in (None, "dynamic", "int8"):
        raise ExportError(f"--tflite_quantize must be dynamic or int8, got {tflite_quantize!r}")
    if tflite_quantize == "int8" and (calibration is None or len(calibration) == 0):
        raise ExportError("--tflite_quantize=int8 needs calibration images "
                          "(--calibration_images)")
    if onnx:
        check_onnx_available()
    if openvino:
        check_openvino_available()
    check_target(target, overwrite)
    module = DepthServingModule(depth_net, config)
    result = ExportResult(write_saved_model(module, target, overwrite))
    stem = target.parent / f"{model_name}_v{int(version)}"
    if tflite:
        result.tflite_path = _write_bytes(Path(f"{stem}.tflite"), convert_tflite(module))
    if tflite_quantize:
        result.tflite_quantized_path = _write_bytes(
            Path(f"{stem}_{tflite_quantize}.tflite"),
            convert_tflite(module, tflite_quantize, calibration))
    if onnx:
        result.onnx_path = write_onnx(depth_net, config, Path(f"{stem}.onnx"), onnx_batch_size)
    if openvino:
        result.openvino_path = write_openvino(depth_net, config, Path(f"{stem}.xml"),
                                              openvino_batch_size)
    return result


def _write_bytes(path: Path, data: bytes) -> Path:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_bytes(data)
    staging.replace(path)
    return path
