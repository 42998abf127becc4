"""Exporting a depth network: TF Serving SavedModels (``saved_model``), TFLite models
(``tflite``), ONNX models (``onnx``), OpenVINO models (``openvino``), and all at once
(``depth_model.export_depth_model``)."""

from monodepth_tf.export.depth_model import ExportResult, export_depth_model
from monodepth_tf.export.onnx import (FeedSizeDisparity, check_onnx_available, onnx_runner,
                                      write_onnx)
from monodepth_tf.export.openvino import (check_openvino_available, openvino_runner,
                                          write_openvino)
from monodepth_tf.export.saved_model import (INPUT_NAME, SIGNATURE_KEY, DepthServingModule,
                                             ExportError, check_target, image_files,
                                             serving_request, version_dir, write_saved_model)
from monodepth_tf.export.tflite import (TFLITE_QUANTIZATIONS, calibration_images,
                                        compare_tflite, compare_with_saved_model,
                                        convert_tflite, disparity_head_nodes, feed_size_images,
                                        tflite_runner)

__all__ = ["INPUT_NAME", "SIGNATURE_KEY", "TFLITE_QUANTIZATIONS", "DepthServingModule",
           "ExportError", "ExportResult", "FeedSizeDisparity", "calibration_images",
           "check_onnx_available", "check_openvino_available", "check_target", "compare_tflite",
           "compare_with_saved_model", "convert_tflite", "disparity_head_nodes",
           "export_depth_model", "feed_size_images", "image_files", "onnx_runner",
           "openvino_runner", "serving_request", "tflite_runner", "version_dir", "write_onnx",
           "write_openvino", "write_saved_model"]
