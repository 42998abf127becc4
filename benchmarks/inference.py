"""Milliseconds per 192x640 image of the depth network, per runtime, at batch 1 and 8.

    .venv/bin/python benchmarks/inference.py [--runtimes keras_eager,xla,tflite_int8,...]
                                             [--batches 1,8] [--runs 10] [--tflite_threads 2]
                                             [--onnxruntime_threads 2] [--openvino_threads 2]

Runtimes: ``keras_eager`` (the Keras model called eagerly), ``keras_function`` (the same call in a
tf.function), ``folded_function`` (the same network as bin/predict runs it,
monodepth_tf.inference.folded's FoldedDepthNet in a tf.function), ``saved_model`` (the exported
``serving_default`` on uint8 images at the feed size, what TF Serving runs, resizing included),
``xla`` (the tf.function with ``jit_compile=True``), ``tflite_float32``, ``tflite_dynamic``
(dynamic-range: int8 weights), ``tflite_int8`` (int8 body, float32 disparity head, calibrated on
crops of ../shared/reference/test_image.jpg and the real KITTI raw frames),
``tflite_int8_quantized_head`` (the same with the head quantized too, to see what the float head
gains), ``onnxruntime`` (bin/export --onnx's model, any batch, under onnxruntime's CPU provider;
needs ``pip install monodepth_tf[onnx]``) and ``openvino`` (bin/export --openvino's model, any
batch, compiled for the CPU in float32; needs ``pip install monodepth_tf[openvino]``). Each figure
is the median of ``--runs`` timed runs after ``--warmup`` runs. Prints a table and one JSON line per
configuration (``{"runtime", "batch", "ms_per_image", ...}``); for the TFLite, ONNX and OpenVINO
models also their disparity's difference to the SavedModel on real images (the test photo, both
cameras of the KITTI raw frame, the odometry frames): max abs and mean abs relative, in %.

The network is the reference ResNet-18 (../shared/reference/monodepth2_r18_seed0: random weights
and randomized BatchNorm statistics, which saturate its sigmoid: its logits span -18..49, half its
disparities sit at the top of the range and the rest spread down to the bottom), or with
``--weights random`` a freshly initialized one (``--seed``; sigmoid outputs 0.49-0.55). Speed does
not depend on the weights; quantization error does. Measured at 192x640 on the 9 images: random
weights, int8 0.05% (0.21% with the head quantized: its output's 1/256 steps); reference weights,
int8 34-35% with or without the float head: there the error is the body's. Its int8 rounding
moves the logits by 2.3 on average (28% of their standard deviation, against 4% on random
weights), and where the sigmoid is small (logits -10..-1: 7% of the pixels, 28 of the 34 points)
a logit error d scales the disparity by about e**d; int8 weights alone (``tflite_dynamic``)
already give 6%.

The network costs 16.0 GFLOP per image. With ``--original_python`` and ``--original_ref`` (see
benchmarks/original.py), the original's depth network (PyTorch, batch 1, eval mode, no
gradients) is timed before and after ours in the same run
(../shared/bench/original_step_and_inference.py), and each runtime is divided by the mean of the
two. Goals (issue 17): float32 <= 0.6x the original, int8 (float head) <= 0.25x.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import monodepth_tf  # noqa: E402,F401  (before TensorFlow: oneDNN on, as in bin/)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from monodepth_tf import export  # noqa: E402
from monodepth_tf.config import ModelConfig  # noqa: E402
from monodepth_tf.weights.folder import build_networks, load_networks  # noqa: E402
from benchmarks.machine import machine_fields  # noqa: E402
from benchmarks.original import (add_original_flags, check_original,  # noqa: E402
                                 original_step_and_inference)

RUNTIMES = ("keras_eager", "keras_function", "folded_function", "saved_model", "xla",
            "tflite_float32", "tflite_dynamic", "tflite_int8", "tflite_int8_quantized_head",
            "onnxruntime", "openvino")
SHARED = Path(__file__).resolve().parents[2] / "shared"


def real_images(shared: Path):
    """(calibration images, evaluation images): image files. Calibration: the test photo and the
    KITTI raw frame's two cameras (crops of them); evaluation: those plus the six odometry
    frames, which calibration never sees."""
    raw = shared / "kitti" / "raw" / "2011_09_26" / "2011_09_26_drive_0000_sync"
    calibration = [shared / "reference" / "test_image.jpg",
                   raw / "image_02" / "data" / "0000000001.png",
                   raw / "image_03" / "data" / "0000000001.png"]
    odometry = sorted((shared / "kitti" / "odometry" / "sequences" / "00" / "image_0").glob("*.png"))
    return calibration, calibration + odometry


def median_ms_per_image(run, batch: np.ndarray, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        run(batch)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times) / len(batch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default=",".join(RUNTIMES),
                        help=f"comma-separated, among {', '.join(RUNTIMES)}")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tflite_threads", type=int, default=2,
                        help="TFLite interpreter (XNNPACK) threads")
    parser.add_argument("--onnxruntime_threads", type=int, default=2,
                        help="onnxruntime intra-op threads")
    parser.add_argument("--openvino_threads", type=int, default=2,
                        help="OpenVINO inference threads")
    parser.add_argument("--calibration_crops", type=int, default=8,
                        help="random crops per calibration image for int8")
    parser.add_argument("--weights", default=str(SHARED / "reference" / "monodepth2_r18_seed0"),
                        help="weights folder, or 'random' for a freshly initialized ResNet-18")
    parser.add_argument("--seed", type=int, default=0,
                        help="initialization seed of --weights random")
    add_original_flags(parser)
    args = parser.parse_args()
    check_original(args, "original_step_and_inference.py")
    runtimes = args.runtimes.split(",")
    unknown = set(runtimes) - set(RUNTIMES)
    if unknown:
        parser.error(f"unknown runtimes {sorted(unknown)}; choose among {', '.join(RUNTIMES)}")
    batches = [int(b) for b in args.batches.split(",")]

    if args.weights != "random":
        config, depth_net, _ = load_networks(args.weights, with_pose=False)
    else:
        keras.utils.set_random_seed(args.seed)
        config = ModelConfig()
        depth_net, _ = build_networks(config, with_pose=False)
    config.height, config.width = 192, 640
    module = export.DepthServingModule(depth_net, config)
    forward = module.keras_disparity_at_feed_size  # the Keras network, scaled disparity

    calibration_paths, evaluation_paths = real_images(SHARED)
    evaluation = export.feed_size_images(evaluation_paths, config.height, config.width)
    rng = np.random.default_rng(0)
    workdir = Path(tempfile.mkdtemp(prefix="inference_benchmark_"))
    saved_model_dir = export.write_saved_model(module, workdir / "mdp" / "1")
    serve = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"]

    runners, notes = {}, {}
    runners["keras_eager"] = lambda x: forward(tf.constant(x)).numpy()
    function = tf.function(forward)
    runners["keras_function"] = lambda x: function(tf.constant(x)).numpy()
    folded_function = tf.function(module.disparity_at_feed_size)  # FoldedDepthNet's
    runners["folded_function"] = lambda x: folded_function(tf.constant(x)).numpy()
    xla = tf.function(forward, jit_compile=True)
    runners["xla"] = lambda x: xla(tf.constant(x)).numpy()
    runners["saved_model"] = lambda x: serve(
        images=tf.constant(np.round(x * 255).astype(np.uint8)))["disparity"].numpy()
    for name, quantization in (("tflite_float32", "none"), ("tflite_dynamic", "dynamic"),
                               ("tflite_int8", "int8"), ("tflite_int8_quantized_head", "int8")):
        if name not in runtimes:
            continue
        representative = None
        if quantization == "int8":
            representative = export.calibration_images(
                calibration_paths, config.height, config.width, args.calibration_crops)
        start = time.perf_counter()
        # batch-polymorphic, so one model serves batch 1 and 8 (as fast as a fixed batch 1)
        model = export.convert_tflite(module, quantization, representative, batch_size=None,
                                      float_head=name != "tflite_int8_quantized_head")
        (workdir / f"{name}.tflite").write_bytes(model)
        print(f"{name}: converted in {time.perf_counter() - start:.0f} s, "
              f"{len(model) / 2 ** 20:.1f} MiB")
        runners[name] = export.tflite_runner(model, num_threads=args.tflite_threads)
        notes[name] = export.compare_tflite(saved_model_dir, model, evaluation)

    # the converted runtimes: (writer, file, runner, threads); each model takes any batch
    converted = {
        "onnxruntime": (export.write_onnx, "onnxruntime.onnx", export.onnx_runner,
                        args.onnxruntime_threads),
        "openvino": (export.write_openvino, "openvino.xml", export.openvino_runner,
                     args.openvino_threads)}
    for name, (write, filename, runner, threads) in converted.items():
        if name not in runtimes:
            continue
        start = time.perf_counter()
        path = write(depth_net, config, workdir / filename)
        size = sum(p.stat().st_size for p in workdir.glob(f"{path.stem}.*"))  # .xml + .bin
        print(f"{name}: converted in {time.perf_counter() - start:.0f} s, "
              f"{size / 2 ** 20:.1f} MiB")
        runners[name] = runner(path, num_threads=threads)
        notes[name] = export.compare_with_saved_model(saved_model_dir, runners[name], evaluation)

    def original_ms():
        timed = original_step_and_inference(args, "stereo", 1, config.height, config.width, 1)
        return None if timed is None else timed["infer_ms"]

    before = original_ms()
    rows = []
    for runtime in runtimes:
        for batch_size in batches:
            batch = rng.integers(0, 256, (batch_size, config.height, config.width, 3))
            batch = (batch / 255.0).astype(np.float32)
            ms = median_ms_per_image(runners[runtime], batch, args.runs, args.warmup)
            row = {"runtime": runtime, "batch": batch_size, "ms_per_image": round(ms, 1)}
            if runtime.startswith("tflite"):
                row["threads"] = args.tflite_threads
            if runtime in converted:
                row["threads"] = converted[runtime][3]
            if runtime in notes:
                row["disparity_vs_saved_model"] = {
                    "max_abs": float(f"{notes[runtime]['max_abs']:.3g}"),
                    "mean_abs_rel_percent": float(f"{notes[runtime]['mean_abs_rel_percent']:.3g}"),
                    "images": len(evaluation)}
            rows.append(row)
            print(f"{runtime}, batch {batch_size}: {ms:.1f} ms per image", flush=True)

    after = original_ms()
    original = None if before is None else (before + after) / 2
    for row in rows:
        row["original_ms"] = None if original is None else round(original, 1)
        row["x_original"] = None if original is None else round(row["ms_per_image"] / original, 3)
        row.update(machine_fields())
        print(json.dumps(row))
    print_table(rows, original, before, after, args, len(evaluation))


def print_table(rows, original, before, after, args, images: int) -> None:
    """The rows as a fixed-width table, with the original's time from the same run."""
    print(f"\n{'runtime':<28}{'batch':>6}{'ms/image':>10}{'x original':>12}"
          f"{'disp. diff (max abs, mean rel %)':>36}")
    for row in rows:
        diff = row.get("disparity_vs_saved_model")
        diff = f"{diff['max_abs']:.3g}, {diff['mean_abs_rel_percent']:.3g}%" if diff else ""
        ratio = "-" if row["x_original"] is None else f"{row['x_original']:.2f}"
        print(f"{row['runtime']:<28}{row['batch']:>6}{row['ms_per_image']:>10.1f}{ratio:>12}"
              f"{diff:>36}")
    if original is not None:
        print(f"\nthe original's depth network, batch 1: {before:.1f} ms before ours, "
              f"{after:.1f} ms after; x original divides by their mean, {original:.1f} ms")
    print(f"median of {args.runs} runs after {args.warmup} warm-up; real-image differences on "
          f"{images} images at the feed size; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")

if __name__ == "__main__":
    main()
