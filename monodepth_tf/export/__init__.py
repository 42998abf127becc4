"""Exporting a depth network: TF Serving SavedModels (``saved_model``), TFLite models
(``tflite``), and both at once (``depth_model.export_depth_model``)."""

from monodepth_tf.export.depth_model import ExportResult, export_depth_model
from monodepth_tf.export.saved_model import (INPUT_NAME, SIGNATURE_KEY, DepthServingModule,
                                             ExportError, check_target, image_files,
                                             serving_request, version_dir, write_saved_model)
from monodepth_tf.export.tflite import (TFLITE_QUANTIZATIONS, calibration_images,
                                        compare_tflite, convert_tflite, disparity_head_nodes,
                                        feed_size_images, tflite_runner)

__all__ = ["INPUT_NAME", "SIGNATURE_KEY", "TFLITE_QUANTIZATIONS", "DepthServingModule",
           "ExportError", "ExportResult", "calibration_images", "check_target", "compare_tflite",
           "convert_tflite", "disparity_head_nodes", "export_depth_model", "feed_size_images",
           "image_files", "serving_request", "tflite_runner", "version_dir",
           "write_saved_model"]
