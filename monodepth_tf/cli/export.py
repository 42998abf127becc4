"""bin/export: a weights folder -> a SavedModel for TF Serving (and TFLite, ONNX and OpenVINO
models).

    bin/export --load_weights_folder weights/mono_640x192 --export_dir serving
    bin/export --model_zoo monodepth2_resnet18_kitti_stereo_640x192 --export_dir serving \\
        --model_name stereo --version 2 --tflite --tflite_quantize int8 \\
        --calibration_images kitti_frames/
    bin/export --load_weights_folder mono_640x192 --export_dir serving --onnx --openvino

Writes ``<export_dir>/<model_name>/<version>/`` (serve it with ``tensorflow_model_server
--model_base_path=<export_dir>/<model_name>``): ``serving_default`` takes uint8 images
``[B, H, W, 3]`` of any size and returns ``disparity``, ``depth`` (and ``metric_depth`` for
stereo-trained weights) ``[B, H, W]``; see monodepth_tf/export.py. With ``--tflite`` /
``--tflite_quantize`` the ``.tflite`` files go beside the version folder, with ``--onnx``
``<model_name>_v<version>.onnx`` (needs ``pip install monodepth_tf[onnx]``), with
``--openvino`` ``<model_name>_v<version>.xml`` and ``.bin`` (needs ``pip install
monodepth_tf[openvino]``; compile it with ``INFERENCE_PRECISION_HINT=f32`` for float32, see
monodepth_tf/export/openvino.py); the largest difference of their disparity to the SavedModel's
is printed.
"""


import numpy as np
from absl import flags

from monodepth_tf.cli.common import load_networks_from_flags, run_tool
from monodepth_tf.files import check_output_folder

flags.DEFINE_string("load_weights_folder", None, "Weights folder to export (ours, or the "
                    "original's .pth files), or a released model's name (e.g. mono_640x192, "
                    "downloaded on first use).")
flags.DEFINE_string("model_zoo", None, "A model name (e.g. mono_640x192 or "
                    "monodepth2_resnet18_kitti_mono_640x192; downloaded on first use) instead of "
                    "--load_weights_folder.")
flags.DEFINE_string("export_dir", None, "Base folder: the model goes to "
                    "<export_dir>/<model_name>/<version>/.")
flags.DEFINE_string("model_name", "mdp", "Model name (TF Serving's --model_name).")
flags.DEFINE_integer("version", 1, "Version folder number.")
flags.DEFINE_bool("overwrite", False, "Replace an existing version folder.")
flags.DEFINE_bool("tflite", False, "Also write a float32 .tflite model (at the feed size).")
flags.DEFINE_enum("tflite_quantize", None, ["dynamic", "int8"], "Also write a quantized "
                  ".tflite model: dynamic-range (int8 weights) or int8 (int8 weights and "
                  "activations calibrated on --calibration_images, the disparity head in "
                  "float32).")
flags.DEFINE_bool("onnx", False, "Also write an ONNX model (at the feed size: float32 images "
                  "[B, H, W, 3] in [0, 1] -> scaled disparity [B, H, W]); needs "
                  "pip install 'monodepth_tf[onnx]'.")
flags.DEFINE_integer("onnx_batch_size", None, "The ONNX model's fixed batch size (default: any "
                     "batch).", lower_bound=1)
flags.DEFINE_bool("openvino", False, "Also write an OpenVINO model (.xml and .bin, at the feed "
                  "size, in float32: images [B, H, W, 3] in [0, 1] -> scaled disparity "
                  "[B, H, W]); needs pip install 'monodepth_tf[openvino]'.")
flags.DEFINE_integer("openvino_batch_size", None, "The OpenVINO model's fixed batch size "
                     "(default: any batch).", lower_bound=1)
flags.DEFINE_string("calibration_images", None, "Folder of images (jpg/png) for int8 "
                    "calibration; also used to compare the TFLite models with the SavedModel.")
flags.DEFINE_integer("calibration_crops", 4, "Random crops per calibration image, besides the "
                     "whole image.")
flags.mark_flag_as_required("export_dir")


def main(argv):
    del argv
    from monodepth_tf import export

    args = flags.FLAGS
    quantize = args.tflite_quantize
    images = None
    if args.onnx:
        export.check_onnx_available()  # before anything is loaded or written
    elif args.onnx_batch_size is not None:
        raise ValueError("--onnx_batch_size needs --onnx")
    if args.openvino:
        export.check_openvino_available()
    elif args.openvino_batch_size is not None:
        raise ValueError("--openvino_batch_size needs --openvino")
    if args.calibration_images:
        images = export.image_files(args.calibration_images)
    elif quantize == "int8":
        raise ValueError("--tflite_quantize=int8 needs --calibration_images (a folder of "
                         "images to calibrate the activation ranges on)")
    check_output_folder(args.export_dir, "--export_dir")
    target = export.version_dir(args.export_dir, args.model_name, args.version)
    export.check_target(target, args.overwrite)
    loaded = load_networks_from_flags(args)
    config, depth = loaded.config, loaded.depth
    calibration = None
    if quantize == "int8":
        calibration = export.calibration_images(images, config.height, config.width,
                                                args.calibration_crops)
    result = export.export_depth_model(depth, config, args.export_dir, args.model_name,
                                       args.version, args.overwrite, args.tflite, quantize,
                                       calibration, args.onnx, args.onnx_batch_size,
                                       args.openvino, args.openvino_batch_size)
    outputs = "disparity, depth" + (", metric_depth" if config.use_stereo else "")
    print(f"SavedModel -> {result.saved_model_dir} (serving_default: uint8 images [B, H, W, 3] "
          f"-> {outputs} [B, H, W]; feed size {config.width}x{config.height})")
    runners = {path: export.tflite_runner for path in (result.tflite_path,
                                                       result.tflite_quantized_path) if path}
    if result.onnx_path is not None:
        runners[result.onnx_path] = export.onnx_runner
    if result.openvino_path is not None:
        runners[result.openvino_path] = export.openvino_runner
    if not runners:
        return
    if images:
        compared = export.feed_size_images(images, config.height, config.width)
        what = f"{len(compared)} image(s) of {args.calibration_images}"
    else:
        rng = np.random.default_rng(0)
        compared = rng.integers(0, 256, (1, config.height, config.width, 3), dtype=np.uint8)
        what = "1 random-noise image (give --calibration_images to compare on real images)"
    for path, runner in runners.items():
        diff = export.compare_with_saved_model(result.saved_model_dir, runner(path), compared)
        kind = {export.onnx_runner: "ONNX", export.openvino_runner: "OpenVINO"}.get(runner,
                                                                                   "TFLite")
        print(f"{kind} -> {path}: disparity vs the SavedModel on {what}: max abs difference "
              f"{diff['max_abs']:.3g}, mean abs relative {diff['mean_abs_rel_percent']:.3g}%")


def run():
    run_tool(main)
