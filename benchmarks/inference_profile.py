"""Where one image's inference time goes, and how near its convolutions come to the float32 peak.

    .venv/bin/python benchmarks/inference_profile.py [--height 192] [--width 640] [--runs 10]
                                                     [--network keras|folded|openvino]
                                                     [--json FILE]

The depth network (ResNet-18, freshly initialized: the time does not depend on the weights) on one
image: ``keras`` in a ``tf.function``, as benchmarks/inference.py's ``keras_function`` runs it;
``folded`` as bin/predict runs it (monodepth_tf.inference.folded.FoldedDepthNet in a
``tf.function``); ``openvino`` bin/export --openvino's model in float32. The median wall time of
``--runs`` calls, then the runtime's profiler over ``--runs`` more (TensorFlow's, or OpenVINO's
per-node counters), op time summed per group as benchmarks/step_profile.py sums it. The
convolutions' FLOPs (benchmarks/flops.py, from the traced graph) over their own op time give their
rate, and over the wall time the whole network's; both as fractions of this machine's float32 peak,
measured first (benchmarks/flops.py). Prints a table; with ``--json``, one JSON line.

Why it matters: a float32 network can go no faster than its FLOPs at the peak. At 192x640 the
network is 16.0 GFLOP (the folded one 14.7), so the fraction of the peak the whole call reaches says
how much of its time is left to win, and where (the groups other than the convolutions).
"""

import argparse
import collections
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

from benchmarks.flops import graph_flops, median_seconds, peak_gflops  # noqa: E402
from benchmarks.machine import machine_fields  # noqa: E402
from benchmarks.step_profile import group_of, op_seconds  # noqa: E402
from monodepth_tf import export  # noqa: E402
from monodepth_tf.config import ModelConfig  # noqa: E402
from monodepth_tf.inference.folded import FoldedDepthNet  # noqa: E402
from monodepth_tf.weights.folder import build_networks  # noqa: E402


# OpenVINO's node types -> groups (unlisted: elementwise/other; "Subgraph" is its fused
# elementwise code)
OPENVINO_GROUPS = {"Convolution": "convolutions", "ConvolutionBackpropData": "convolutions",
                   "Pad": "padding", "Transpose": "layout", "Concat": "layout",
                   "StridedSlice": "layout", "Reorder": "layout", "MaxPool": "pooling",
                   "Relu": "activations", "Elu": "activations", "Sigmoid": "activations"}


def profile_inference(height: int, width: int, runs: int, network: str = "keras") -> dict:
    """The figures of one image's inference at ``height`` x ``width`` (see the module's doc):
    wall and per-group op milliseconds, convolution GFLOP and GFLOP/s."""
    keras.utils.set_random_seed(0)
    config = ModelConfig(height=height, width=width)
    depth_net, _ = build_networks(config, with_pose=False)
    if network == "keras":
        forward = tf.function(lambda images: depth_net(images, training=False)[0])
    else:
        forward = tf.function(FoldedDepthNet(depth_net, for_converters=network == "openvino"))
    images = tf.random.uniform([1, height, width, 3], seed=0)
    conv_flops = graph_flops(forward.get_concrete_function(images).graph)
    if network == "openvino":
        wall_s, groups = openvino_profile(depth_net, config, images.numpy(), runs)
    else:
        wall_s, groups = tensorflow_profile(forward, images, runs)
    return dict(network=network, height=height, width=width, wall_ms=round(1000 * wall_s, 2),
                group_ms={g: round(1000 * s, 2) for g, s in groups.most_common()},
                conv_gflop=round(conv_flops / 1e9, 2),
                conv_gflops=round(conv_flops / 1e9 / groups["convolutions"], 1),
                network_gflops=round(conv_flops / 1e9 / wall_s, 1))


def tensorflow_profile(forward, images, runs: int):
    """(median wall seconds, op seconds per group) of ``forward(images)``."""
    wall_s = median_seconds(lambda: forward(images), runs)
    with tempfile.TemporaryDirectory() as trace_dir:
        tf.profiler.experimental.start(trace_dir)
        for _ in range(runs):
            forward(images).numpy()
        tf.profiler.experimental.stop()
        per_type = op_seconds(trace_dir)
    groups: collections.Counter = collections.Counter()
    for op_type, seconds in per_type.items():
        groups[group_of(op_type)] += seconds / runs
    return wall_s, groups


def openvino_profile(depth_net, config, images: np.ndarray, runs: int):
    """(median wall seconds, node seconds per group) of bin/export --openvino's model, compiled
    as openvino_runner compiles it (float32, 2 threads), with OpenVINO's per-node counters."""
    import openvino

    with tempfile.TemporaryDirectory() as folder:
        path = export.write_openvino(depth_net, config, Path(folder) / "model.xml")
        compiled = openvino.Core().compile_model(str(path), "CPU", {
            **export.openvino.FLOAT32_CONFIG, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": 2, "PERF_COUNT": True})
    request = compiled.create_infer_request()
    times = []
    for _ in range(runs + 2):
        started = time.perf_counter()
        request.infer({export.INPUT_NAME: images})
        times.append(time.perf_counter() - started)
    groups: collections.Counter = collections.Counter()
    for _ in range(runs):
        request.infer({export.INPUT_NAME: images})
        for node in request.get_profiling_info():
            group = OPENVINO_GROUPS.get(node.node_type, "elementwise/other")
            groups[group] += node.real_time.total_seconds() / runs
    return statistics.median(times[2:]), groups


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--network", choices=("keras", "folded", "openvino"), default="keras")
    parser.add_argument("--json", help="append the result as one JSON line to this file")
    args = parser.parse_args()
    peak = peak_gflops(tf.float32, 10)["peak"]
    result = profile_inference(args.height, args.width, args.runs, args.network)
    result.update(float32_peak_gflops=peak,
                  conv_fraction_of_peak=round(result["conv_gflops"] / peak, 3),
                  network_fraction_of_peak=round(result["network_gflops"] / peak, 3))
    print(f"\n{args.network}, one image, {args.height}x{args.width}, float32: "
          f"{result['wall_ms']} ms; "
          f"{result['conv_gflop']} GFLOP of convolutions; float32 peak {peak} GFLOP/s\n")
    print("| group | ms (op time) |\n| --- | --- |")
    for group, ms in result["group_ms"].items():
        print(f"| {group} | {ms} |")
    print(f"\nconvolutions: {result['conv_gflops']} GFLOP/s in their op time, "
          f"{result['conv_fraction_of_peak']:.0%} of the peak; the whole call: "
          f"{result['network_gflops']} GFLOP/s, {result['network_fraction_of_peak']:.0%}")
    if args.json:
        with open(args.json, "a") as out:
            out.write(json.dumps(dict(result, **machine_fields())) + "\n")


if __name__ == "__main__":
    main()
