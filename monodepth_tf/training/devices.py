"""Where training runs: the tf.distribute strategy and its devices, the worker's index, and
the process settings that make a step reproducible."""

import json
import os
from typing import Iterable, List, Optional, Tuple

import tensorflow as tf

from monodepth_tf.training.options import OptionsError


def make_strategy(devices=None) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when TF_CONFIG names several workers, else a
    MirroredStrategy over ``devices`` (default: every visible GPU, or the CPU)."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    if len(tf_config.get("cluster", {}).get("worker", [])) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if devices is None:
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or ["/cpu:0"]
    return tf.distribute.MirroredStrategy(devices)


def strategy_devices(gpu: str) -> Tuple[Optional[List[str]], Optional[str]]:
    """The devices ``--gpu`` names (None: let :func:`make_strategy` take every visible GPU),
    and a warning to log, if any. On a machine without GPUs, ``--gpu`` falls back to the CPU
    with a warning, so that a command written for a GPU machine still runs."""
    if not gpu:
        return None, None
    visible = tf.config.list_logical_devices("GPU")
    if not visible:
        return ["/cpu:0"], f"--gpu={gpu}: no GPU is visible; training on the CPU"
    indices = [int(g) for g in gpu.split(",")]
    absent = [i for i in indices if i >= len(visible)]
    if absent:
        raise OptionsError(f"--gpu={gpu}: GPU {absent[0]} does not exist ({len(visible)} "
                           "visible)")
    return [visible[i].name for i in indices], None


# /proc/cpuinfo's names of the instructions that compute in bfloat16 (AVX-512 BF16, AMX).
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def precision_warning(mixed_precision: Optional[str], on_gpus: bool,
                      flags: Optional[Iterable[str]]) -> Optional[str]:
    """A warning for mixed precision where it is slow: ``float16`` without a GPU, and
    ``bfloat16`` on a CPU that has no bfloat16 instructions (``flags``:
    :func:`monodepth_tf.cpu.cpu_flags`; nothing is said when they are unknown), where
    TensorFlow emulates them; None otherwise."""
    if on_gpus:
        return None
    if mixed_precision == "float16":
        return ("--mixed_precision=float16 is meant for GPUs: on a CPU TensorFlow's float16 "
                "convolution gradients are slow (a 64x192 stereo step took 9.1 s against "
                "0.14 s in float32 on an Intel Xeon with AVX512_FP16). Train without "
                "--mixed_precision here, or with bfloat16 on a CPU that has it.")
    if mixed_precision != "bfloat16" or flags is None:
        return None
    if any(flag in BFLOAT16_CPU_FLAGS for flag in flags):
        return None
    return ("--mixed_precision=bfloat16: this CPU has no bfloat16 instructions (neither "
            f"{' nor '.join(BFLOAT16_CPU_FLAGS)} in /proc/cpuinfo), so TensorFlow emulates "
            "them: a 192x640 mono step took 7.5x as long as in float32 on such a CPU (AVX2). "
            "Train without --mixed_precision here.")


def make_deterministic() -> None:
    """Makes each training step a function of its inputs and the variables alone
    (``--deterministic``); process-wide, to call before the first step is traced.

    Turns off TensorFlow's graph optimizer (grappler). Its memory optimizer rewrites a sum of
    more than two tensors (an ``AddN``: the gradient of every tensor used in several places)
    into accumulations into a temporary variable, made in whatever order the terms happen to be
    computed, and it picks the sums to rewrite by comparing the step's estimated peak memory
    with the RAM free when the step is first run. Two runs of the same seed then differ by
    ~1e-7 after one step, which Adam amplifies: after five steps (64x192, batch 2, lr 1e-3) by
    3e-3 in weights and 0.26 in BatchNorm moving variances, with or without op determinism or
    oneDNN. Without grappler the step is reproducible for a given number of threads (the thread
    count changes how some kernels split their sums). Op determinism is enabled too, for GPU
    kernels (not tested here). On the CPU neither cost time (3.7-3.8 CPU-s per 192x640 step,
    batch 2, with or without) before training's convolutions took their per-tap gradients,
    which are kept only with grappler on
    (:func:`~monodepth_tf.networks.layers.use_cpu_convolution_gradients`).
    """
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    tf.config.experimental.enable_op_determinism()


def worker_index(strategy: tf.distribute.Strategy) -> int:
    """0 for the chief (or a single machine), else this worker's index in TF_CONFIG."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return 0
    return resolver.task_id + (1 if has_chief else 0)
