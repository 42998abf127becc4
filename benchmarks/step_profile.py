"""Where a training step's time goes: TensorFlow's profiler over a few steps, summed per op type.

    .venv/bin/python benchmarks/step_profile.py [--mode mono] [--batch 4] [--height 192]
        [--width 640] [--steps 3] [--mixed_precision bfloat16] [--top 25] [--json FILE]
        [--sequential] [--peak] [--alone]

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

Issue 17's float32 goal in two figures (the convolutions at >= 85% of the peak, everything else
under 15% of the step):

- ``--sequential``: TensorFlow runs one op at a time (inter-op parallelism 1; each op still
  uses every core), so an op's time is its own, not shared with ops beside it, and the op
  seconds add up to the step (which is slower than with ops side by side);
- ``--peak``: the machine's float32 peak is measured first (benchmarks/flops.py), and the
  convolutions' rate is given as a fraction of it: the FLOPs of the convolution ops the step
  computes (counted on its traced graph: forward, input and kernel gradients; the encoders'
  first input gradients are not computed) over the convolution ops' seconds. The other
  groups' share of the op time is the goal's "everything else";
- ``--alone``: every one of those convolution ops is also rebuilt with its shapes and
  attributes and timed by itself on random data: the rate TensorFlow's kernels reach on the
  step's shapes with the machine to themselves, against which the rate in the step reads.
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

from benchmarks.flops import median_seconds, peak_gflops  # noqa: E402
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


# The step's convolution ops, forward and gradients (their op types before oneDNN's rewrite)
CONVOLUTION_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter",
                   "DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropInput",
                   "DepthwiseConv2dNativeBackpropFilter")
# the attributes a convolution op is rebuilt with
CONVOLUTION_ATTRS = ("strides", "padding", "explicit_paddings", "data_format", "dilations")


def graph_ops(graph):
    """Every op of a traced graph and of the function graphs it calls, recursively."""
    yield from graph.get_operations()
    for function in graph._functions.values():  # noqa: SLF001  (no public accessor)
        yield from graph_ops(function.graph)


def convolution_flops(op) -> int:
    """FLOPs (2 x multiply-adds) of one convolution op of :data:`CONVOLUTION_OPS`, from static
    shapes: the convolution's output side (the forward's output, or the gradient coming back
    into a backward op) times the multiply-adds per output (kernel taps, times the input
    channels unless depthwise)."""
    forward = op.type in ("Conv2D", "DepthwiseConv2dNative")
    outputs = (op.outputs[0] if forward else op.inputs[2]).shape  # backprops: out_backprop
    kernel = (op.outputs[0] if "BackpropFilter" in op.type else op.inputs[1]).shape
    per_output = kernel[0] * kernel[1] * (kernel[2] if op.type.startswith("Conv2D") else 1)
    return 2 * outputs.num_elements() * per_output


def step_convolutions(trainer, distributed) -> list:
    """The convolution ops a training step computes: those of its traced graph whose result is
    used (the encoders' first layers' input gradients are not, and grappler removes them)."""
    graph = trainer._train_step.get_concrete_function(distributed).graph  # noqa: SLF001
    return [op for op in graph_ops(graph)
            if op.type in CONVOLUTION_OPS and op.outputs[0].consumers()]


def convolutions_alone_seconds(convolutions, repeats: int = 5) -> float:
    """The seconds of ``convolutions`` (ops of :func:`step_convolutions`), each rebuilt with
    its shapes and attributes on random data and timed by itself (median of ``repeats`` after
    a warm-up), less the time of calling a function that does nothing but the same slice
    and sum: what TensorFlow's kernels take for them with the machine to themselves."""
    rng = tf.random.Generator.from_seed(0)
    nothing = tf.constant([0.0])
    call = median_seconds(tf.function(lambda: tf.reduce_sum(nothing[:1])), 4 * repeats)
    seconds = 0.0
    for op in convolutions:
        sizes = 0 if "BackpropInput" in op.type else 1 if "BackpropFilter" in op.type else None
        arguments = [tf.constant(op.outputs[0].shape.as_list(), tf.int32) if i == sizes
                     else tf.cast(rng.normal(t.shape), t.dtype) for i, t in enumerate(op.inputs)]
        attrs = {name: op.get_attr(name) for name in CONVOLUTION_ATTRS
                 if name in op.node_def.attr}
        raw = getattr(tf.raw_ops, op.type)
        names = [arg.name for arg in op.op_def.input_arg]
        run = tf.function(lambda raw=raw, names=names, arguments=arguments, attrs=attrs:
                          tf.reduce_sum(raw(**dict(zip(names, arguments)), **attrs)[:1]))
        seconds += max(median_seconds(run, repeats) - call, 0.0)
    return seconds


def profile(mode: str, batch: int, height: int, width: int, steps: int,
            mixed_precision=None, alone: bool = False) -> tuple:
    """(op seconds per step by op type, wall seconds per step, the convolution FLOPs a step
    computes, and with ``alone`` the seconds of its convolutions each run alone, else None)
    of ``steps`` traced steps."""
    trainer, _, distributed = trainer_and_batch(mode, batch, height, width,
                                                mixed_precision=mixed_precision)
    convolutions = step_convolutions(trainer, distributed)
    flops = sum(convolution_flops(op) for op in convolutions)
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
    alone_seconds = convolutions_alone_seconds(convolutions) if alone else None
    return (collections.Counter({k: v / steps for k, v in totals.items()}), wall, flops,
            alone_seconds)


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
    parser.add_argument("--alone", action="store_true",
                        help="also time each of the step's convolutions by itself")
    parser.add_argument("--json", help="append one JSON line per group to this file")
    args = parser.parse_args()
    if args.sequential:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    peak = peak_gflops(tf.float32, 10)["peak"] if args.peak else None
    per_type, wall, flops, alone = profile(args.mode, args.batch, args.height, args.width,
                                           args.steps, args.mixed_precision, args.alone)
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
    if alone:
        print(f"the same convolutions each run alone: {alone:.3f} s at "
              f"{flops / alone / 1e9:.0f} GFLOP/s"
              + (f", {flops / alone / 1e9 / peak:.1%} of the peak" if peak else ""))
    if args.json:
        common = dict(mode=args.mode, batch=args.batch, height=args.height, width=args.width,
                      precision=args.mixed_precision or "float32", sequential=args.sequential,
                      wall_s_per_step=round(wall, 3), conv_gflop_per_step=round(flops / 1e9, 2),
                      conv_gflops=round(rate, 1))
        if alone:
            common.update(conv_alone_s=round(alone, 4),
                          conv_alone_gflops=round(flops / alone / 1e9, 1))
        if peak:
            common.update(float32_peak_gflops=peak, conv_fraction_of_peak=round(rate / peak, 3))
            if alone:
                common.update(conv_alone_fraction_of_peak=round(flops / alone / 1e9 / peak, 3))
        with open(args.json, "a") as out:
            for group, seconds in groups.most_common():
                out.write(json.dumps(dict(
                    common, group=group, op_s_per_step=round(seconds, 4),
                    share=round(seconds / total, 4), **machine_fields())) + "\n")


if __name__ == "__main__":
    main()
