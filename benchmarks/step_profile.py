"""Where a training step's time goes: TensorFlow's profiler over a few steps, summed per op type.

    .venv/bin/python benchmarks/step_profile.py [--mode mono] [--batch 4] [--height 192]
        [--width 640] [--steps 3] [--mixed_precision bfloat16] [--top 25] [--json FILE]
        [--sequential] [--peak]

Builds the Trainer and in-memory batch of benchmarks/train_step.py, runs two warm-up steps,
then traces ``--steps`` steps with ``tf.profiler.experimental`` and reads the trace (the
XPlane protobuf TensorFlow writes): every executed op's duration, summed per op type over the
steps and divided by their number. Ops run in parallel on the CPU's threads, so the op seconds
of a step may exceed its wall time; the shares are of the summed op time. Groups: the
convolutions (forward, input and filter gradients: what the networks' FLOPs are), and the rest
by what it belongs to (BatchNorm, padding, the loss's sampling, elementwise math, Adam...).
The kernels of XLA's computations (the float32 loss's photometric errors and sampling) carry
no op type in the trace; they count together as ``XLA fusion``. Prints the top op types and
the groups; with ``--json``, one JSON line per group.
"""

import argparse
import collections
import glob
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import monodepth_tf  # noqa: E402,F401  (before TensorFlow: oneDNN on, as in bin/)

import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from benchmarks.flops import op_flops, peak_gflops  # noqa: E402
from benchmarks.machine import machine_fields  # noqa: E402
from benchmarks.train_step import trainer_and_batch  # noqa: E402
from monodepth_tf.training.options import MODES  # noqa: E402

# The op type under which the kernels of XLA's computations count (the loss's photometric errors
# and bilinear sampling, forward and gradient): the trace names them after their fusions
# ("multiply_clamp_fusion.2"), without an op type.
XLA_FUSION = "XLA fusion"

# op type without oneDNN's prefix (_MklNative, _Mkl) -> group; convolutions are the networks'
# (forward, input and filter gradients, fused with bias/BatchNorm/ReLU or not; PadWithConv2D is
# a convolution with its zero padding; MatMul is conv2d_with_cpu_gradients' kernel gradient, the
# only matrix product of a step besides the geometry's BatchMatMul; DepthwiseConv2dNative is the
# disparity heads' training form, see networks.layers.PaddedConv2D)
GROUPS = (("Conv2D", "convolutions"), ("FusedConv2D", "convolutions"),
          ("PadWith", "convolutions"), ("MatMul", "convolutions"),
          ("FusedBatchNorm", "batchnorm"), ("MirrorPad", "padding"), ("Pad", "padding"),
          ("ResourceApplyAdam", "adam"), ("Assign", "adam"), ("Gather", "sampling"),
          ("ScatterNd", "sampling"), ("UnsortedSegmentSum", "sampling"),
          ("AvgPool", "ssim pooling"), ("DepthwiseConv2dNative", "convolutions"),
          ("MaxPool", "pooling"), ("Relu", "activations"), ("Elu", "activations"),
          ("Sigmoid", "activations"), ("Resize", "resize"), ("Sum", "reductions"),
          ("Mean", "reductions"), ("Min", "reductions"), ("ArgMin", "reductions"),
          ("Max", "reductions"), ("Transpose", "layout"), ("ToTf", "layout"),
          ("ConcatV2", "layout"), ("Slice", "layout"), ("StridedSlice", "layout"),
          ("Tile", "layout"), ("Unpack", "layout"), ("Pack", "layout"), ("Cast", "casts"),
          ("BatchMatMul", "matmul"), ("Einsum", "matmul"), (XLA_FUSION, "XLA (the loss)"))


def group_of(op_type: str) -> str:
    """The group an op type's time counts in (see GROUPS; unlisted: ``elementwise/other``)."""
    for prefix in ("_MklNative", "_Mkl", "_"):  # "_": grappler's fused ops, _FusedConv2D
        if op_type.startswith(prefix):
            op_type = op_type[len(prefix):]
            break
    for start, group in GROUPS:
        if op_type.startswith(start):
            return group
    return "elementwise/other"


def op_seconds(trace_dir: str) -> collections.Counter:
    """Seconds per op type summed over every op event on the host's threads of a trace."""
    totals: collections.Counter = collections.Counter()
    for path in glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(path).read_bytes())
        for plane in space.planes:
            if not plane.name.startswith("/host:CPU"):
                continue
            for line in plane.lines:
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if re.fullmatch(r"\w*fusion(\.\d+)?", name):
                        totals[XLA_FUSION] += event.duration_ps * 1e-12
                        continue
                    if ":" not in name or "::" in name:  # not an op: the executor's spans
                        continue
                    op_type = name.rsplit(":", 1)[1]
                    if op_type and op_type[0].isupper() or op_type.startswith("_"):
                        totals[op_type] += event.duration_ps * 1e-12
    return totals


def computed_convolution_flops(graph: tf.Graph) -> int:
    """The convolution FLOPs a training step computes for the networks' forward ``graph``
    (traced with its shapes): each convolution forward, its kernel gradient, and its input
    gradient unless its input depends on no variable (the encoders' first layers, on the
    images: nothing asks for their input gradient, and the step does not compute it)."""
    from_variables = {}

    def reads_variables(op) -> bool:  # iterative: the graph is hundreds of ops deep
        stack = [op]
        while stack:
            top = stack[-1]
            if top.name in from_variables:
                stack.pop()
                continue
            if top.type == "ReadVariableOp":
                from_variables[top.name] = True
                stack.pop()
                continue
            pending = [t.op for t in top.inputs if t.op.name not in from_variables]
            if pending:
                stack.extend(pending)
                continue
            from_variables[top.name] = any(from_variables[t.op.name] for t in top.inputs)
            stack.pop()
        return from_variables[op.name]

    total = 0
    for op in graph.get_operations():
        flops = op_flops(graph, op)
        if flops:
            total += flops * (3 if reads_variables(op.inputs[0].op) else 2)
    return total


def profile(mode: str, batch: int, height: int, width: int, steps: int,
            mixed_precision=None) -> tuple:
    """(op seconds per step by op type, wall seconds per step, the convolution FLOPs a step
    computes) of ``steps`` traced steps."""
    trainer, data, distributed = trainer_and_batch(mode, batch, height, width,
                                                   mixed_precision=mixed_precision)
    forward = tf.function(lambda: trainer.system(data, training=True))
    flops = computed_convolution_flops(forward.get_concrete_function().graph)
    for _ in range(2):
        float(trainer.train_step(distributed).total)
    with tempfile.TemporaryDirectory() as trace_dir:
        tf.profiler.experimental.start(trace_dir)
        started = time.perf_counter()
        for _ in range(steps):
            float(trainer.train_step(distributed).total)
        wall = (time.perf_counter() - started) / steps
        tf.profiler.experimental.stop()
        totals = op_seconds(trace_dir)
    return collections.Counter({k: v / steps for k, v in totals.items()}), wall, flops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="mono")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--mixed_precision", choices=["float16", "bfloat16"])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sequential", action="store_true",
                        help="run one op at a time (inter-op parallelism 1)")
    parser.add_argument("--peak", action="store_true",
                        help="measure the float32 peak first and give the convolutions' rate")
    parser.add_argument("--json", help="append one JSON line per group to this file")
    args = parser.parse_args()
    if args.sequential:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    peak = peak_gflops(tf.float32, 10)["peak"] if args.peak else None
    per_type, wall, flops = profile(args.mode, args.batch, args.height, args.width, args.steps,
                                    args.mixed_precision)
    total = sum(per_type.values())
    print(f"{args.mode}, batch {args.batch}, {args.height}x{args.width}, "
          f"{args.mixed_precision or 'float32'}"
          f"{', one op at a time' if args.sequential else ''}: {wall:.3f} s/step (traced), "
          f"{total:.3f} op-seconds/step\n")
    print("| op type | group | s/step | share |\n| --- | --- | --- | --- |")
    for op_type, seconds in per_type.most_common(args.top):
        print(f"| {op_type} | {group_of(op_type)} | {seconds:.4f} | {seconds / total:.1%} |")
    groups: collections.Counter = collections.Counter()
    for op_type, seconds in per_type.items():
        groups[group_of(op_type)] += seconds
    print("\n| group | s/step | share |\n| --- | --- | --- |")
    for group, seconds in groups.most_common():
        print(f"| {group} | {seconds:.4f} | {seconds / total:.1%} |")
    rate = flops / groups["convolutions"] / 1e9
    print(f"\nconvolutions: {flops / 1e9:.1f} GFLOP per step at {rate:.0f} GFLOP/s"
          + (f", {rate / peak:.1%} of the float32 peak ({peak:.0f} GFLOP/s)" if peak else "")
          + f"; everything else {1 - groups['convolutions'] / total:.1%} of the op time")
    if args.json:
        common = dict(mode=args.mode, batch=args.batch, height=args.height, width=args.width,
                      precision=args.mixed_precision or "float32", sequential=args.sequential,
                      wall_s_per_step=round(wall, 3), conv_gflop_per_step=round(flops / 1e9, 2),
                      conv_gflops=round(rate, 1))
        if peak:
            common.update(float32_peak_gflops=peak, conv_fraction_of_peak=round(rate / peak, 3))
        with open(args.json, "a") as out:
            for group, seconds in groups.most_common():
                out.write(json.dumps(dict(
                    common, group=group, op_s_per_step=round(seconds, 4),
                    share=round(seconds / total, 4), **machine_fields())) + "\n")


if __name__ == "__main__":
    main()
