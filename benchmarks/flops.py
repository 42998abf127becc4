"""This machine's float32 (and bfloat16) peak as TensorFlow reaches it, and the convolution
FLOPs of a training step, so that a step time can be read as a fraction of the hardware's limit.

    .venv/bin/python benchmarks/flops.py [--repeats 10] [--dtypes float32,bfloat16]

The peak is the best of a large matrix product (4096 x 4096 x 4096) and two convolutions shaped
like the encoder's (3x3, 64 and 256 channels, batch 4 at 192x640's 1/4 and 1/16 sizes), each the
median of ``--repeats`` runs inside a ``tf.function`` after a warm-up run. A training step's
convolution FLOPs are counted from the traced forward graph of the networks (TensorFlow's own
per-op FLOP statistics: 2 x multiply-adds), times 3 for the backward pass (the gradients with
respect to the input and to the weights each cost one forward); the first layers' input
gradients, which the step does not compute, are counted too (at ResNet-18 and 192x640, 11.6 of
427 GFLOP in mono: the depth encoder's stem and the pose encoder's twice; 2.3 of 192 in
stereo).
benchmarks/step_profile.py counts the convolution ops of the traced step itself instead.
Prints one JSON line per measurement.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import monodepth_tf  # noqa: E402,F401  (before TensorFlow: oneDNN on, as in bin/)

import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import ops  # noqa: E402  (the per-op FLOP statistics)

CONVOLUTIONS = ("Conv2D", "DepthwiseConv2dNative")
# (input [B, H, W, C], filters [kh, kw, C, C']) of the peak's convolutions
PEAK_CONVOLUTIONS = (((4, 48, 160, 64), (3, 3, 64, 64)), ((4, 12, 40, 256), (3, 3, 256, 256)))
MATMUL_SIZE = 4096


def median_seconds(function, repeats: int) -> float:
    """Median wall-clock seconds of ``function()`` (which returns a tensor) after a warm-up."""
    function().numpy()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function().numpy()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_gflops(dtype: tf.DType, repeats: int) -> dict:
    """GFLOP/s of the matrix product and of each peak convolution in ``dtype``, and the best."""
    rng = tf.random.Generator.from_seed(0)
    results = {}
    a = tf.cast(rng.normal([MATMUL_SIZE, MATMUL_SIZE]), dtype)
    b = tf.cast(rng.normal([MATMUL_SIZE, MATMUL_SIZE]), dtype)
    matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1], tf.float32)))
    results["matmul"] = 2 * MATMUL_SIZE ** 3 / median_seconds(matmul, repeats) / 1e9
    for shape, kernel in PEAK_CONVOLUTIONS:
        x = tf.cast(rng.normal(shape), dtype)
        w = tf.cast(rng.normal(kernel), dtype)
        conv = tf.function(lambda x=x, w=w: tf.reduce_sum(tf.cast(
            tf.nn.conv2d(x, w, 1, "SAME")[:, :1], tf.float32)))
        flops = 2 * shape[0] * shape[1] * shape[2] * kernel[0] * kernel[1] * kernel[2] * kernel[3]
        results[f"conv_{shape[3]}ch"] = flops / median_seconds(conv, repeats) / 1e9
    results = {name: round(value, 1) for name, value in results.items()}
    return dict(results, peak=max(results.values()))


def graph_flops(graph: tf.Graph, op_types=CONVOLUTIONS) -> int:
    """The FLOPs of the ops of ``op_types`` in a traced graph (fully defined shapes needed),
    from TensorFlow's registered statistics; transposed convolutions (``Conv2DBackpropInput``,
    which has none registered) always count, as 2 x their multiply-adds."""
    total = 0
    for op in graph.get_operations():
        if op.type == "Conv2DBackpropInput":
            kernel, inputs = op.inputs[1].shape, op.inputs[2].shape  # [kh, kw, out, in]
            total += 2 * inputs.num_elements() * kernel[0] * kernel[1] * kernel[2]
        elif op.type in op_types:
            stats = ops.get_stats_for_node_def(graph, op.node_def, "flops")
            if stats.value is None:
                raise ValueError(f"{op.name}: no FLOP count (shapes not fully defined?)")
            total += stats.value
    return total


def step_convolution_flops(system, batch) -> int:
    """Convolution FLOPs of one training step: the networks' forward on ``batch`` (traced once
    with its shapes), times 3 for forward plus backward."""
    forward = tf.function(lambda: system(batch, training=True))
    return 3 * graph_flops(forward.get_concrete_function().graph)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args()
    for name in args.dtypes.split(","):
        result = peak_gflops(tf.as_dtype(name), args.repeats)
        print(json.dumps({"dtype": name, "gflops": result, "cpus": os.cpu_count(),
                          "load_average": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
