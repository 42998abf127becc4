"""Seconds per training step of the real Trainer, per mode, with and without XLA.

    .venv/bin/python benchmarks/train_step.py [--mode mono|stereo|mono_stereo] [--batch 4]
                                              [--height 192 --width 640] [--xla true|false]
                                              [--repeats 5] [--warmup 2]
                                              [--exact true|false|both] [--rounds 1]
                                              [--mixed_precision float32,bfloat16]
                                              [--adam fused|keras|both]
                                              [--conv_gradients auto|per_tap|onednn|both]

Builds the Trainer of ``bin/train`` (ResNet-18 depth and pose networks, Adam, the Monodepth2
loss at four scales) under the default strategy (one CPU replica here) and times
``Trainer.train_step`` on an in-memory batch with the structure the data pipeline produces
(images per frame and scale, colour-augmented copies, intrinsics per scale, stereo_T), so the
numbers are the step alone, without data loading. Reports the median of ``--repeats`` steps
after ``--warmup`` steps (tracing and XLA compilation happen there). Prints a table and one
JSON line per configuration. Without ``--mode`` / ``--xla`` it runs every combination.
``--exact`` picks the loss: float32 (false, the training default), the original's roundings
(true, ``bin/train --exact_loss``), or both; with ``--rounds N`` every configuration is
measured N times, the rounds interleaved (exact, float32, exact, float32, ...) so that both see
the same machine load.
Besides wall-clock seconds (``step_s``) it reports the process's CPU seconds per step
(``cpu_s``, all threads) and the load average: on a shared machine the wall clock depends on
the other processes, the CPU time much less.

Each row also gives the networks' convolution FLOPs per step (benchmarks/flops.py) and the rate
that the step time makes of them; with ``--peak`` the machine's float32 peak is measured first
and the rate is given as a fraction of it. The networks are also timed alone (``networks_s``:
their forward and backward pass on the same batch, the gradient of the sum of their outputs,
no loss, no Adam): ``networks_share`` is their part of the step, the rest is the loss's and
Adam's, and ``networks_conv_gflops`` the rate of the convolutions within the networks' own
time (a lower bound of the convolutions' rate: BatchNorm, padding and activations are in it).

Every configuration is measured in a fresh process (spawned, so nothing of this one is
inherited), whose peak resident memory is the row's ``peak_rss_mb`` (benchmarks/memory.py: the
high-water mark of a process that built the Trainer and ran its steps, TensorFlow's own
footprint included).

With ``--original_python`` and ``--original_ref`` (see benchmarks/original.py), every round first
times the original's step for the same mode, batch and size
(../shared/bench/original_step_and_inference.py: its networks, loss and Adam on an in-memory
batch, median of ``--repeats`` steps), and the table divides the two from that round; the
original's process's peak resident memory is ``original_peak_rss_mb`` (PyTorch's footprint
included).
"""

import argparse
import itertools
import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import monodepth_tf  # noqa: E402,F401  (before TensorFlow: oneDNN on, as in bin/)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from monodepth_tf.data.batch import Batch  # noqa: E402
from monodepth_tf.data.frames import frame_key  # noqa: E402
from monodepth_tf.data.pipeline import intrinsics  # noqa: E402
from monodepth_tf.networks import layers  # noqa: E402
from monodepth_tf.training.devices import make_strategy  # noqa: E402
from monodepth_tf.training.options import MODES, TrainOptions  # noqa: E402
from monodepth_tf.training import step as step_module  # noqa: E402
from monodepth_tf.training.step import Trainer  # noqa: E402
from benchmarks.machine import cpu_model  # noqa: E402
from benchmarks.flops import median_seconds, peak_gflops, step_convolution_flops  # noqa: E402
from benchmarks.memory import peak_rss_mb  # noqa: E402
from benchmarks.original import (add_original_flags, check_original,  # noqa: E402
                                 original_step_and_inference)


def synthetic_batch(frame_ids, batch: int, height: int, width: int, scales, seed: int = 0) -> Batch:
    """A batch shaped like the pipeline's: smooth random images (so SSIM and the auto-mask
    see structure, not white noise), halved per scale, KITTI intrinsics per scale."""
    rng = np.random.default_rng(seed)
    color, color_aug = {}, {}
    for frame_id in frame_ids:
        key = frame_key(frame_id)
        coarse = rng.random((batch, height // 8, width // 8, 3)).astype(np.float32)
        full = tf.image.resize(coarse, (height, width), method="bicubic")
        full = tf.clip_by_value(full + 0.02 * rng.standard_normal(full.shape, np.float32), 0, 1)
        color[key] = tuple(tf.image.resize(full, (height // 2 ** s, width // 2 ** s),
                                           antialias=True) for s in scales)
        color_aug[key] = tf.clip_by_value(full * 1.1, 0.0, 1.0)
    Ks = [np.repeat(intrinsics(height, width, s)[None], batch, 0) for s in scales]
    stereo_T = np.repeat(np.eye(4, dtype=np.float32)[None], batch, 0)
    stereo_T[:, 0, 3] = -0.1
    return Batch(color=color, color_aug=color_aug,
                 K=tuple(tf.constant(K) for K in Ks),
                 inv_K=tuple(tf.constant(np.linalg.inv(K)) for K in Ks),
                 stereo_T=tf.constant(stereo_T))


def trainer_and_batch(mode: str, batch: int, height: int, width: int, xla: bool = False,
                      mixed_precision=None, exact: bool = False):
    """bin/train's Trainer for ``mode`` (scratch weights, the mode's defaults) under the default
    strategy, an in-memory batch for it (:func:`synthetic_batch`), and that batch as the
    strategy's distributed value: (trainer, batch, distributed batch)."""
    options = TrainOptions(height=height, width=width, batch_size=batch, weights_init="scratch",
                           jit_compile=xla, **{k: v for k, v in MODES[mode].items()
                                               if k != "split"}).validate()
    strategy = make_strategy()
    loss_options = dataclasses.replace(options.loss_options(), exact=exact)
    trainer = Trainer(strategy, options.model_config(), loss_options,
                      options.learning_rate, options.scheduler_step_size, 1000,
                      jit_compile=xla, mixed_precision=mixed_precision)
    data = synthetic_batch(options.all_frame_ids, batch, height, width, options.scales)
    return trainer, data, strategy.experimental_distribute_values_from_function(lambda _: data)


def networks_alone_seconds(trainer: Trainer, data: Batch, repeats: int) -> float:
    """Median seconds of the step's networks alone: their forward pass on ``data`` and the
    gradient of the sum of their outputs with respect to every weight (the same convolutions,
    BatchNorm, padding and activations, forward and backward, as a step), without the loss and
    without Adam. The step's time minus this is the loss's and Adam's."""

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            outputs = trainer.system(data, training=True)
            total = tf.add_n([tf.reduce_sum(tf.cast(t, tf.float32))
                              for t in tf.nest.flatten(outputs)])
        return tf.add_n([tf.reduce_sum(tf.cast(g, tf.float32))
                         for g in tape.gradient(total, trainer.variables)])

    return median_seconds(forward_backward, repeats)


def measure(mode: str, batch: int, height: int, width: int, xla: bool, repeats: int,
            warmup: int, mixed_precision=None, exact: bool = False, adam: str = "fused",
            conv_gradients: str = "auto") -> dict:
    if adam == "keras":  # the Trainer's optimizer before FusedAdam, for comparison
        step_module.FusedAdam = keras.optimizers.Adam
    if conv_gradients != "auto":  # one form whatever the CPU (the child process's setting)
        layers.use_cpu_convolution_gradients = lambda: conv_gradients == "per_tap"
    trainer, data, distributed = trainer_and_batch(mode, batch, height, width, xla,
                                                   mixed_precision, exact)
    conv_flops = step_convolution_flops(trainer.system, data)
    started = time.perf_counter()
    for _ in range(warmup):
        float(trainer.train_step(distributed).total)
    warmup_s = time.perf_counter() - started
    times, cpu_times = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        loss = float(trainer.train_step(distributed).total)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    if not np.isfinite(loss):
        raise RuntimeError(f"{mode}: non-finite loss {loss}")
    step_s = statistics.median(times)
    networks_s = networks_alone_seconds(trainer, data, repeats)
    return {"mode": mode, "batch": batch, "height": height, "width": width, "xla": xla,
            "step_s": round(step_s, 3), "samples_per_s": round(batch / step_s, 3),
            "min_s": round(min(times), 3), "max_s": round(max(times), 3),
            "cpu_s": round(statistics.median(cpu_times), 3), "warmup_s": round(warmup_s, 1),
            "mixed_precision": mixed_precision, "exact": exact, "adam": adam,
            "conv_gradients": conv_gradients,
            "conv_gflop_per_step": round(conv_flops / 1e9, 1),
            "conv_gflops_achieved": round(conv_flops / 1e9 / step_s, 1),
            "networks_s": round(networks_s, 3), "networks_share": round(networks_s / step_s, 3),
            "networks_conv_gflops": round(conv_flops / 1e9 / networks_s, 1),
            "load_average": round(os.getloadavg()[0], 2)}


def measure_with_peak_memory(*args, **kwargs) -> dict:
    """:func:`measure`'s row with this process's ``peak_rss_mb``."""
    return dict(measure(*args, **kwargs), peak_rss_mb=peak_rss_mb())


def measure_in_child(*args, **kwargs) -> dict:
    """:func:`measure` (same arguments) in a fresh spawned process, with that process's peak
    resident memory (``peak_rss_mb``): one configuration's, whatever ran here before."""
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as child:
        return child.submit(measure_with_peak_memory, *args, **kwargs).result()


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_precisions(text: str) -> list:
    """``--mixed_precision``: a list of None (float32), "bfloat16", "float16"."""
    names = text.split(",")
    for name in names:
        if name not in ("float32", "bfloat16", "float16"):
            raise argparse.ArgumentTypeError(f"{name!r} is not float32, bfloat16 or float16")
    return [None if name == "float32" else name for name in names]


def parse_exact(text: str) -> list:
    """``--exact``: ``[True]``, ``[False]`` or, for ``both``, ``[True, False]``."""
    return [True, False] if text.lower() == "both" else [parse_bool(text)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), help="default: all three")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--xla", type=parse_bool, help="true or false; default: both")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--exact", type=parse_exact, default=[False],
                        help="true: the loss with the original's roundings (LossOptions.exact, "
                             "bin/train --exact_loss); false (default): float32; both")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every configuration this many times, interleaved")
    parser.add_argument("--mixed_precision", type=parse_precisions, default=[None],
                        help="networks in this precision (the loss stays float32): float32 "
                             "(default), bfloat16, float16, or several, comma-separated, each "
                             "measured against the same round's original")
    parser.add_argument("--adam", choices=["fused", "keras", "both"], default="fused",
                        help="the Trainer's FusedAdam (default) or Keras' Adam, or both")
    parser.add_argument("--conv_gradients", choices=["auto", "per_tap", "onednn", "both"],
                        default="auto",
                        help="the float32 convolutions' gradients in training: as the CPU "
                             "decides (networks.layers.use_cpu_convolution_gradients), the "
                             "per-tap form or oneDNN's, or both of the latter")
    parser.add_argument("--peak", action="store_true",
                        help="first measure this machine's float32 peak (benchmarks/flops.py) "
                             "and report each step's convolution FLOPs as a fraction of it")
    add_original_flags(parser)
    args = parser.parse_args()
    check_original(args, "original_step_and_inference.py")
    peak = peak_gflops(tf.float32, 10)["peak"] if args.peak else None
    modes = [args.mode] if args.mode else ["mono", "stereo", "mono_stereo"]
    xlas = [args.xla] if args.xla is not None else [False, True]
    results = []
    for mode in modes:
        for xla in xlas:
            for _ in range(args.rounds):
                original = original_step_and_inference(args, mode, args.batch, args.height,
                                                       args.width, args.repeats)
                for exact, precision, adam, conv_gradients in itertools.product(
                        args.exact, args.mixed_precision,
                        ["fused", "keras"] if args.adam == "both" else [args.adam],
                        (["per_tap", "onednn"] if args.conv_gradients == "both"
                         else [args.conv_gradients])):
                    result = measure_in_child(mode, args.batch, args.height, args.width, xla,
                                              args.repeats, args.warmup, precision, exact, adam,
                                              conv_gradients)
                    if peak:
                        result["float32_peak_gflops"] = peak
                        result["fraction_of_peak"] = round(
                            result["conv_gflops_achieved"] / peak, 3)
                        result["networks_fraction_of_peak"] = round(
                            result["networks_conv_gflops"] / peak, 3)
                    if original is not None:
                        result["original_step_s"] = original["train_step_s"]
                        result["x_original"] = round(result["step_s"] /
                                                     original["train_step_s"], 3)
                        result["original_peak_rss_mb"] = original["peak_rss_mb"]
                    result.update(date=time.strftime("%Y-%m-%d"), cpu=cpu_model())
                    results.append(result)
                    print(json.dumps(result), flush=True)
    print_table(results, args)


def print_table(results, args) -> None:
    """The results as a Markdown table; the original's time and the ratio come from the same
    round."""
    print(f"\nbatch {args.batch}, {args.height}x{args.width}, median of {args.repeats} steps "
          f"after {args.warmup} warm-up steps; {os.cpu_count()} CPUs\n")
    print("| mode | XLA | precision | loss | s/step | samples/s | CPU s/step | load | "
          "conv GFLOP/step | GFLOP/s | of float32 peak | networks alone s | networks' share | "
          "networks' GFLOP/s | of peak | peak RSS MiB | original s/step | x original | "
          "original peak RSS MiB |")
    print("| --- " * 19 + "|")
    for r in results:
        theirs = (f"{r['original_step_s']:.3f} | {r['x_original']:.2f} | "
                  f"{r['original_peak_rss_mb']:.0f}" if "original_step_s" in r else "- | - | -")
        print(f"| {r['mode']} | {'yes' if r['xla'] else 'no'} | "
              f"{r['mixed_precision'] or 'float32'}"
              f"{' (Keras Adam)' if r['adam'] == 'keras' else ''}"
              f"{'' if r['conv_gradients'] == 'auto' else ' ' + r['conv_gradients']} | "
              f"{'exact' if r['exact'] else 'float32'} | "
              f"{r['step_s']:.3f} | {r['samples_per_s']:.2f} | {r['cpu_s']:.2f} | "
              f"{r['load_average']} | {r['conv_gflop_per_step']} | "
              f"{r['conv_gflops_achieved']} | {r.get('fraction_of_peak', '-')} | "
              f"{r['networks_s']:.3f} | {r['networks_share']:.2f} | "
              f"{r['networks_conv_gflops']} | {r.get('networks_fraction_of_peak', '-')} | "
              f"{r['peak_rss_mb']:.0f} | {theirs} |")

if __name__ == "__main__":
    main()
