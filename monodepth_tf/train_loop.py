"""A training run: data, strategy, the step, checkpoints, resumption, logs, weight folders.

Layout of a run (``<log_dir>/<model_name>/``)::

    opt.json                      the options, as JSON
    train.log                     the plain-text log
    metrics.jsonl                 one line per validation: epoch (-1: before the first step),
                                  step, val loss and, with ground truth, the 7 depth metrics
    checkpoints/                  tf.train.CheckpointManager (networks, Adam, epoch, step)
    models/weights_<epoch>/       weight folders (see monodepth_tf.weights.folder)
    models/weights_final/
    models/weights_best/          the epoch with the lowest val abs_rel (with LiDAR ground truth)
    tensorboard/                  scalars (losses, learning rate, samples/s, val metrics) and
                                  images (inputs, colour-mapped disparities, auto-masks)

A restarted run restores the newest checkpoint and continues at the same epoch and step: the
data order and augmentation of an epoch depend only on (seed, epoch), so it sees the batches the
interrupted run would have seen. Checkpoints are written by TensorFlow's manager, which renames
complete files into place: an interruption leaves the previous checkpoint intact. With
``--deterministic`` (see :func:`make_deterministic`) the resumed run also ends with the weights of
an uninterrupted one, bit for bit.

Scalars (losses, learning rate, samples/s) are written every ``log_frequency`` steps (and at the
first and last step), the losses as the mean of the steps since the last write.
"""

import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

import keras
import tensorflow as tf

from monodepth_tf.data.check import raise_on_problems, split_problems
from monodepth_tf.data.kitti import KittiRawLayout, SplitEntry, default_split_dir, read_split
from monodepth_tf.data.pipeline import PipelineOptions, make_dataset
from monodepth_tf.data.standard_splits import missing_split_hint
from monodepth_tf.download import DownloadError, download
from monodepth_tf.evaluation import METRIC_NAMES
from monodepth_tf.options import OptionsError, TrainOptions
from monodepth_tf.summaries import (disparity_images, mask_images, to_uint8, write_images,
                                    write_scalar)
from monodepth_tf.training import Trainer, as_float32, make_strategy
from monodepth_tf.validation import Validator, lidar_missing, spread_subset
from monodepth_tf.weights.folder import NetworkConfig, load_weights_folder, save_weights_folder
from monodepth_tf.weights.torch_import import load_imagenet_resnet

# The torchvision ImageNet checkpoints the original initializes its encoders from.
IMAGENET_FILES = {18: "resnet18-5c106cde.pth", 34: "resnet34-333f7ec4.pth",
                  50: "resnet50-19c8e357.pth", 101: "resnet101-5d3b4d8f.pth",
                  152: "resnet152-b121ed2d.pth"}
IMAGENET_URL = "https://download.pytorch.org/models/"
# Where a scratch run's sigmoid disparities start (the disparity heads' bias; see
# DepthDecoder.start_disparities_at), instead of the 0.5 that PyTorch's initialization gives.
# 0.03 is a scaled disparity of 0.31 (depth 3.2 with the default depth range: 17 m with
# KITTI's 0.54 m baseline as the 0.1 of stereo_T), the middle of a street scene's range, where
# the stereo warp is a few pixels off; from 0.5 (depth 0.2, ~1 m) it is tens of pixels off,
# the photometric loss has no useful gradient there, and training may collapse to a constant
# or saturated disparity (benchmarks/learn_synthetic.py measures both).
SCRATCH_DISPARITY = 0.03
# One JSON object per validation (see Run.validate), in the run folder.
METRICS_FILE = "metrics.jsonl"


@dataclasses.dataclass
class DataSource:
    layout: KittiRawLayout
    train: List[SplitEntry]
    val: List[SplitEntry]


def open_data(options: TrainOptions) -> DataSource:
    """The train and val lists, every file they need checked before training starts."""
    if options.dataset == "folder":  # your own frames and videos (split made when not given)
        from monodepth_tf.data.folder import FolderOptions, open_folder_data
        folder = FolderOptions(options.frame_stride, options.target_fps, options.skip_static)
        return DataSource(*open_folder_data(options.data_path, options.all_frame_ids,
                                            options.run_dir, folder, options.split_dir,
                                            options.split))
    split_dir = Path(options.split_dir) if options.split_dir else default_split_dir()
    if options.split_dir and not split_dir.is_dir():
        raise OptionsError(f"--split_dir={split_dir} does not exist")
    if not (split_dir / options.split).is_dir():
        raise OptionsError(f"--split={options.split}: no folder {split_dir / options.split} "
                           f"({missing_split_hint(options.split, split_dir)})")
    layout = KittiRawLayout(options.data_path, "png" if options.png else "jpg")
    train = read_split(split_dir, options.split, "train")
    val = read_split(split_dir, options.split, "val")
    problems = split_problems(layout, train, options.all_frame_ids, source="train_files.txt")
    problems += split_problems(layout, val, options.all_frame_ids, source="val_files.txt")
    raise_on_problems(problems, f"--data_path={options.data_path} --split={options.split}")
    return DataSource(layout, train, val)


def imagenet_checkpoint(num_layers: int) -> Path:
    """The ImageNet ResNet the original used, from the Keras cache (downloaded once)."""
    name = IMAGENET_FILES[num_layers]
    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    if (cached / name).is_file():
        return cached / name
    try:
        return download(IMAGENET_URL + name, cached / name)
    except DownloadError as error:  # offline, proxy, HTTP errors: the message says which
        raise OptionsError(
            f"--weights_init=pretrained needs torchvision's ImageNet ResNet-{num_layers} "
            f"({name}), which could not be downloaded ({error}). Put the file at "
            f"{cached / name}, or train with --weights_init=scratch") from None


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
    kernels (not tested here). On the CPU neither costs time (3.7-3.8 CPU-s per 192x640 step,
    batch 2, with or without).
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


class Run:
    """One training run (see the module docstring for what it writes)."""

    def __init__(self, options: TrainOptions, data: DataSource,
                 strategy: Optional[tf.distribute.Strategy] = None):
        self.options = options
        self.data = data
        keras.utils.set_random_seed(options.seed)
        if options.deterministic:
            make_deterministic()
        devices, warning = strategy_devices(options.gpu) if strategy is None else (None, None)
        self.strategy = strategy or make_strategy(devices)
        # Across machines every worker trains; the chief writes the run folder, the others
        # keep their own checkpoints in a hidden sub-folder so that nobody overwrites anybody.
        worker = worker_index(self.strategy)
        self.dir = options.run_dir if worker == 0 else options.run_dir / f".worker_{worker}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = _make_logger(self.dir / "train.log")
        if warning:
            self.log.warning(warning)
        self.steps_per_epoch = len(data.train) // options.batch_size
        if self.steps_per_epoch == 0:
            raise OptionsError(f"--batch_size={options.batch_size} is larger than the "
                               f"{len(data.train)} training samples")
        self.trainer = Trainer(self.strategy, options.model_options(), options.loss_options(),
                               options.learning_rate, options.scheduler_step_size,
                               self.steps_per_epoch, options.jit_compile,
                               options.mixed_precision)
        self.system = self.trainer.system
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        # the lowest val abs_rel so far: checkpointed, so that a resumed run keeps the best
        self.best_abs_rel = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
        self.checkpoint = self.trainer.checkpoint(epoch=self.epoch,
                                                  best_abs_rel=self.best_abs_rel)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.dir / "checkpoints",
                                                  max_to_keep=3)
        self.pipeline = PipelineOptions(options.height, options.width, options.all_frame_ids,
                                        options.scales, augment=True, seed=options.seed)
        self.writer = tf.summary.create_file_writer(str(self.dir / "tensorboard"))
        self.validator = self._make_validator()
        # a progress bar redrawn at every step, on a terminal only (logs get the log lines)
        self.progress = sys.stderr if sys.stderr.isatty() else None
        # per-step losses (total, then per scale) since scalars were last written
        self._unwritten_losses: List[List[float]] = []

    def _make_validator(self) -> Optional[Validator]:
        o = self.options
        entries = spread_subset(self.data.val, o.val_samples)
        if not entries:
            self.log.info("no val samples: no validation")
            return None
        missing = lidar_missing(self.data.layout, entries)
        if missing:
            self.log.info("validation: loss only (no LiDAR ground truth: %s)", missing)
        return Validator(self.data.layout, entries, self.pipeline, o.loss_options(),
                         with_depth=missing is None, batch_size=o.batch_size)

    def initialize(self) -> None:
        """Resume from the newest checkpoint, else load weights / ImageNet as asked; from
        scratch, start the disparity heads at SCRATCH_DISPARITY."""
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
            self.log.info("resumed from %s at epoch %d, step %d", self.manager.latest_checkpoint,
                          int(self.epoch.numpy()), int(self.trainer.iterations.numpy()))
            return
        o = self.options
        if o.load_weights_folder:
            load_weights_folder(o.load_weights_folder, self.system.depth, self.system.pose,
                                o.models_to_load)
            self.log.info("loaded %s from %s", ", ".join(o.models_to_load), o.load_weights_folder)
        elif o.weights_init == "pretrained":
            path = imagenet_checkpoint(o.num_layers)
            load_imagenet_resnet(self.system.depth.encoder, path)
            if self.system.pose is not None and o.pose_model_type == "separate_resnet":
                load_imagenet_resnet(self.system.pose.encoder, path)
            self.log.info("encoders initialized from ImageNet weights %s", path)
        else:
            self.system.depth.decoder.start_disparities_at(SCRATCH_DISPARITY)
        (self.dir / "opt.json").write_text(json.dumps(dataclasses.asdict(o), indent=2) + "\n")

    def validate(self, epoch: int) -> None:
        """Scores the val samples, logs the scores and appends them to ``metrics.jsonl``;
        saves ``weights_best`` when abs_rel improved. Epoch -1 is the untrained network (a
        baseline, never saved as the best)."""
        if self.validator is None:
            return
        result = self.validator(self.system)
        step = int(self.trainer.iterations.numpy())
        with self.writer.as_default(step=step):
            write_scalar("val/loss", result.loss)
            for name, value in (result.depth or {}).items():
                write_scalar(f"val/{name}", value)
        record = {"epoch": epoch, "step": step, "loss": result.loss}
        record.update({m: result.depth[m] for m in METRIC_NAMES} if result.depth else {})
        with open(self.dir / METRICS_FILE, "a") as metrics_file:
            metrics_file.write(json.dumps(record) + "\n")
        if result.depth is None:
            self.log.info("epoch %d val loss %.5f", epoch, result.loss)
            return
        metrics = " ".join(f"{m} {result.depth[m]:.4f}" for m in METRIC_NAMES)
        self.log.info("epoch %d val loss %.5f %s", epoch, result.loss, metrics)
        if epoch >= 0 and result.depth["abs_rel"] < float(self.best_abs_rel.numpy()):
            self.best_abs_rel.assign(result.depth["abs_rel"])
            self.save_weights("weights_best", {"epoch": epoch, "val": result.depth})

    def checkpoint_variables(self):
        """Every variable a checkpoint holds: networks (BatchNorm statistics included), Adam's
        step and moments, the epoch and the best val abs_rel."""
        variables = [v for net in self.system.networks().values() for v in net.variables]
        return variables + list(self.trainer.optimizer.variables) + [self.epoch,
                                                                      self.best_abs_rel]

    def _dataset(self, epoch: int, skip_batches: int):
        def dataset_fn(context):
            per_replica = context.get_per_replica_batch_size(self.options.batch_size)
            data = make_dataset(self.data.layout, self.data.train, self.pipeline, per_replica,
                                epoch=epoch, input_context=context)
            # a pipeline feeds its replicas one per-replica batch each per step
            replicas_per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
            return data.skip(skip_batches * replicas_per_pipeline)
        return self.strategy.distribute_datasets_from_function(dataset_fn)

    def train(self) -> str:
        """Trains until num_epochs or max_steps; returns why it stopped."""
        o = self.options
        self.initialize()
        step = int(self.trainer.iterations.numpy())
        total_steps = o.num_epochs * self.steps_per_epoch
        if o.max_steps:
            total_steps = min(total_steps, o.max_steps)
        self.log.info("training %s on %d samples, %d steps per epoch, %d replica(s)",
                      o.model_name, len(self.data.train), self.steps_per_epoch,
                      self.strategy.num_replicas_in_sync)
        if step == 0:  # a fresh run: the untrained network's score first, as epoch -1
            self.validate(-1)
        started, start_step = time.time(), step
        while step < total_steps:
            epoch = step // self.steps_per_epoch
            self.epoch.assign(epoch)
            for batch in self._dataset(epoch, step - epoch * self.steps_per_epoch):
                result = self.trainer.train_step(batch)
                loss = float(result.total)
                if not math.isfinite(loss):
                    self.log.error("loss is %s at step %d: stopping; the last good checkpoint "
                                   "is %s", loss, step, self.manager.latest_checkpoint)
                    return "non-finite loss"
                step += 1
                self._log_step(step, total_steps, result, started, start_step)
                if step % o.log_frequency == 0 or step == start_step + 1:
                    self._log_images(step, batch)
                if o.save_steps and step % o.save_steps == 0:
                    self.manager.save(checkpoint_number=step)
                if step >= total_steps or step % self.steps_per_epoch == 0:
                    break
            if step % self.steps_per_epoch == 0:
                finished = step // self.steps_per_epoch
                self.validate(finished - 1)
                self.epoch.assign(finished)
                self.manager.save(checkpoint_number=step)
                if finished % o.save_frequency == 0:
                    self.save_weights(f"weights_{finished - 1}")
            elif step >= total_steps:  # stopped inside an epoch (--max_steps)
                self.validate(step // self.steps_per_epoch)
        self.manager.save(checkpoint_number=step)
        self.save_weights("weights_final")
        return "done"

    def _log_step(self, step, total, result, started, start_step):
        """Progress bar every step; every ``log_frequency`` steps (and at the first and the
        last) a log line and the scalars: the losses averaged over the steps since the last
        write, the learning rate and samples/s at this step."""
        o = self.options
        elapsed = time.time() - started
        rate = (step - start_step) * o.batch_size / max(elapsed, 1e-9)
        self._unwritten_losses.append([float(result.total)]
                                      + [float(v) for v in result.per_scale])
        remaining = (total - step) * o.batch_size / max(rate, 1e-9)
        if self.progress is not None:
            print("\r" + progress_line(step, total, float(result.total), rate, remaining),
                  end="\n" if step == total else "", file=self.progress, flush=True)
        if step % o.log_frequency and step != total and step != start_step + 1:
            return
        means = [math.fsum(column) / len(column) for column in zip(*self._unwritten_losses)]
        self._unwritten_losses = []
        with self.writer.as_default(step=step):
            write_scalar("loss", means[0])
            for s, value in zip(o.scales, means[1:]):
                write_scalar(f"loss/{s}", value)
            write_scalar("learning_rate", self.trainer.optimizer.learning_rate)
            write_scalar("samples_per_s", rate)
        self.log.info("epoch %d step %d/%d loss %.5f %.2f samples/s ETA %s",
                      (step - 1) // self.steps_per_epoch, step, total, float(result.total),
                      rate, time.strftime("%H:%M:%S", time.gmtime(remaining)))

    def _log_images(self, step: int, distributed_batch) -> None:
        """Up to four samples of the first replica's batch: inputs, the disparity of each
        scale (colour-mapped) and, with auto-masking, the scale-0 auto-mask; from the networks
        in inference mode (a training-mode pass would move BatchNorm's statistics)."""
        local = self.strategy.experimental_local_results
        batch = tf.nest.map_structure(lambda t: local(t)[0][:4], distributed_batch)
        outputs, losses = self._preview(batch)
        with self.writer.as_default(step=step):
            write_images("color/0", list(to_uint8(batch.color["0"][0].numpy())))
            for scale, disp in zip(self.options.scales, outputs.disps):
                write_images(f"disp/{scale}", disparity_images(disp.numpy()))
            if losses.identity_selection:
                write_images("automask/0", mask_images(losses.identity_selection[0].numpy()))

    @tf.function
    def _preview(self, batch):
        outputs = as_float32(self.system(batch, training=False))
        return outputs, self.system.loss(batch, outputs, self.options.loss_options())

    def save_weights(self, name: str, extra: Optional[dict] = None) -> Path:
        o = self.options
        config = NetworkConfig(height=o.height, width=o.width, num_layers=o.num_layers,
                               scales=tuple(o.scales), use_stereo=o.use_stereo,
                               pose_model_type=(o.pose_model_type if self.system.pose is not None
                                                else None),
                               num_pose_frames=o.model_options().num_pose_frames,
                               min_depth=o.min_depth, max_depth=o.max_depth)
        extra = dict(extra or {}, step=int(self.trainer.iterations.numpy()))
        folder = save_weights_folder(self.dir / "models" / name, config, self.system.depth,
                                     self.system.pose, extra=extra)
        self.log.info("saved %s", folder)
        return folder


def progress_line(step: int, total: int, loss: float, rate: float, remaining: float,
                  width: int = 24) -> str:
    """``[#########...............]  120/300 loss 0.12345  8.1 samples/s ETA 00:00:22``"""
    filled = width * step // max(total, 1)
    eta = time.strftime("%H:%M:%S", time.gmtime(remaining))
    return (f"[{'#' * filled}{'.' * (width - filled)}] {step:>{len(str(total))}}/{total} "
            f"loss {loss:.5f} {rate:5.1f} samples/s ETA {eta}")


def _make_logger(path: Path) -> logging.Logger:
    logger = logging.getLogger(f"monodepth_tf.run.{path}")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        formatter = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        for handler in (logging.FileHandler(path), logging.StreamHandler(sys.stdout)):
            handler.setFormatter(formatter)
            logger.addHandler(handler)
        logger.propagate = False
    return logger
