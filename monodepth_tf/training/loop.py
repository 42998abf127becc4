"""A training run: the data, the step, and the loop that ties the run's collaborators together.

Layout of a run (``<log_dir>/<model_name>/``)::

    opt.json                      the options, as JSON (rewritten when a resume changes one)
    opt_history.jsonl             one line per resume that changed options (see resume.py)
    train.log                     the plain-text log
    timings.jsonl                 one line per training process: the seconds of its steps,
                                  validations, checkpoints, weight folders and images,
                                  and the rest (see monodepth_tf.training.timings)
    metrics.jsonl                 one line per validation: epoch (-1: before the first step),
                                  step, val loss and, with ground truth, the 7 depth metrics
    checkpoints/                  tf.train.CheckpointManager (networks, Adam, epoch, step)
    models/weights_<epoch>/       weight folders (see monodepth_tf.weights.folder)
    models/weights_final/
    models/weights_best/          the epoch with the lowest val abs_rel (with LiDAR ground truth)
    tensorboard/                  scalars (losses, learning rate, samples/s, val metrics) and
                                  images (inputs, colour-mapped disparities, auto-masks)

The collaborators: :class:`~monodepth_tf.training.step.Trainer` (one step),
:class:`~monodepth_tf.training.checkpoints.RunCheckpoints` (checkpoints and weight folders),
:class:`~monodepth_tf.training.logging.RunLog` (log, scalars, images, metrics, progress) and
:class:`~monodepth_tf.training.validation.Validator` (the val scores).

A restarted run restores the newest checkpoint and continues at the same epoch and step: the
data order and augmentation of an epoch depend only on (seed, epoch), so it sees the batches the
interrupted run would have seen. Checkpoints are written by TensorFlow's manager, which renames
complete files into place: an interruption leaves the previous checkpoint intact. With
``--deterministic`` (see :func:`monodepth_tf.training.devices.make_deterministic`) the resumed
run also ends with the weights of an uninterrupted one, bit for bit. A resume whose options
change what the checkpoint means is refused before anything is built
(:mod:`monodepth_tf.training.resume`).

A run stops (outcome ``non-finite ...``, exit status 1 from bin/train) at the first NaN or
infinity in a training loss, a validation score, or a variable about to be written: no
checkpoint or weight folder is ever written with one, so the newest checkpoint stays the last
good one.
"""

import dataclasses
import math
import time
from pathlib import Path
from typing import List, Optional

import keras
import tensorflow as tf

from monodepth_tf.cpu import cpu_flags
from monodepth_tf.data.check import raise_on_problems, split_problems
from monodepth_tf.data.folder import FolderOptions, open_folder_data
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.layout import Layout
from monodepth_tf.data.pipeline import PipelineOptions, make_dataset
from monodepth_tf.data.splits import (SplitEntry, default_split_dir, missing_split_hint,
                                      read_split)
from monodepth_tf.training.checkpoints import RunCheckpoints, initial_weights, weights_config
from monodepth_tf.training.devices import (make_deterministic, make_strategy,
                                           precision_warning, strategy_devices, worker_index)
from monodepth_tf.training.logging import RunLog, terminal_stderr
from monodepth_tf.training.options import OptionsError, TrainOptions
from monodepth_tf.training.resume import check_resume, record_resume, write_options
from monodepth_tf.training.step import Trainer
from monodepth_tf.training.timings import PhaseTimes
from monodepth_tf.training.validation import InferencePass, make_validator
from monodepth_tf.weights.folder import NonFiniteWeightsError


class NonFiniteError(ArithmeticError):
    """A training loss or a validation score is NaN or infinite (``kind``: what was)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclasses.dataclass
class DataSource:
    """What a run trains and validates on: a layout and its train and val entries."""

    layout: Layout
    train: List[SplitEntry]
    val: List[SplitEntry]


def open_data(options: TrainOptions) -> DataSource:
    """The train and val lists, every file they need checked before training starts."""
    if options.dataset == "folder":  # your own frames and videos (split made when not given)
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


class Run:
    """One training run (see the module docstring for what it writes).

    Attributes:
        trainer, system: the step and its networks.
        checkpoints: checkpoints and weight folders (:class:`RunCheckpoints`).
        logs: log, scalars, images, metrics and progress (:class:`RunLog`).
        validator: the val scores (None without val samples).
        inference: the networks' traced inference pass and loss, for validation and
            TensorBoard's images (:class:`InferencePass`).
        times: where this process's time goes (:class:`PhaseTimes`; restarted by
            :meth:`train`, written to ``timings.jsonl`` when it stops).
    """

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
        # a resume with incompatible options stops here, before anything is built or written
        self.resume = check_resume(options, self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs = RunLog(self.dir, options.scales, options.batch_size, options.log_frequency,
                           progress=terminal_stderr())
        self.log = self.logs.logger
        precision = precision_warning(options.mixed_precision,
                                      bool(tf.config.list_logical_devices("GPU")), cpu_flags())
        for message in (warning, precision):
            if message:
                self.log.warning(message)
        self.steps_per_epoch = len(data.train) // options.batch_size
        if self.steps_per_epoch == 0:
            raise OptionsError(f"--batch_size={options.batch_size} is larger than the "
                               f"{len(data.train)} training samples")
        self.trainer = Trainer(self.strategy, options.model_config(), options.loss_options(),
                               options.learning_rate, options.scheduler_step_size,
                               self.steps_per_epoch, options.jit_compile,
                               options.mixed_precision)
        self.system = self.trainer.system
        self.checkpoints = RunCheckpoints(self.dir, self.trainer,
                                          weights_config(options, self.system.pose is not None))
        self.pipeline = PipelineOptions(options.height, options.width, options.all_frame_ids,
                                        options.scales, augment=True, seed=options.seed)
        self.validator = make_validator(data.layout, data.val, options, self.pipeline, self.log)
        self.inference = InferencePass(self.system, options.loss_options())
        self.times = PhaseTimes(options.batch_size)

    def initialize(self) -> None:
        """Resume from the newest checkpoint (the options it changes said and recorded:
        :func:`~monodepth_tf.training.resume.record_resume`), else set the starting weights as
        asked (:func:`~monodepth_tf.training.checkpoints.initial_weights`) and write
        ``opt.json``."""
        if self.checkpoints.restore_latest():
            step = int(self.trainer.iterations.numpy())
            self.log.info("resumed from %s at epoch %d, step %d", self.checkpoints.latest,
                          int(self.checkpoints.epoch.numpy()), step)
            if self.resume is not None:
                for line in self.resume.messages():
                    self.log.info("%s", line)
                record_resume(self.dir, self.options, self.resume, step)
            return
        loaded = initial_weights(self.options, self.trainer)
        if loaded:
            self.log.info("%s", loaded)
        write_options(self.dir, self.options)

    def validate(self, epoch: int) -> None:
        """Scores the val samples and reports them (:meth:`RunLog.validation`); saves
        ``weights_best`` when abs_rel improved. Epoch -1 is the untrained network (a baseline,
        never saved as the best)."""
        if self.validator is None:
            return
        with self.times.phase("validation"):
            result = self.validator(self.inference)
            step = int(self.trainer.iterations.numpy())
            self.logs.validation(epoch, step, result)
        non_finite = result.non_finite()
        if non_finite:
            raise NonFiniteError("validation", f"validation of epoch {epoch} at step {step}: "
                                 f"{', '.join(non_finite)}")
        if result.depth and epoch >= 0 and \
                self.checkpoints.is_new_best(result.depth["abs_rel"]):
            self.save_weights("weights_best", {"epoch": epoch, "val": result.depth})

    def save_weights(self, name: str, extra: Optional[dict] = None) -> Path:
        """Writes the weight folder ``models/<name>/`` and logs it."""
        with self.times.phase("weights"):
            folder = self.checkpoints.save_weights(name, extra)
        self.log.info("saved %s", folder)
        return folder

    def save_checkpoint(self, step: int) -> None:
        """Writes checkpoint ``step`` (see :meth:`RunCheckpoints.save`)."""
        with self.times.phase("checkpoint"):
            self.checkpoints.save(step)

    def _dataset(self, step: int, total_steps: int):
        """The distributed batches of steps ``step`` .. ``total_steps - 1``: their epochs in one
        dataset, so that the run reads them through one iterator. (An iterator per epoch put
        the strategy's MultiDeviceIterator, and on several replicas its autotuning model,
        through a teardown at every epoch's end: see
        :func:`~monodepth_tf.data.pipeline.without_autotune_model`.)"""
        first, last = step // self.steps_per_epoch, (total_steps - 1) // self.steps_per_epoch

        def dataset_fn(context):
            per_replica = context.get_per_replica_batch_size(self.options.batch_size)
            data = make_dataset(self.data.layout, self.data.train, self.pipeline, per_replica,
                                epoch=first, input_context=context, epochs=last - first + 1)
            # a pipeline feeds its replicas one per-replica batch each per step
            replicas_per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
            return data.skip((step - first * self.steps_per_epoch) * replicas_per_pipeline)
        return self.strategy.distribute_datasets_from_function(dataset_fn, self._input_options())

    def _input_options(self) -> Optional[tf.distribute.InputOptions]:
        """On one device, the replica reads the pipeline's iterator itself. By default the
        strategy puts a MultiDeviceIterator in between, whose per-device datasets run
        tf.data's autotuning model (see
        :func:`~monodepth_tf.data.pipeline.without_autotune_model`: destroying it at an
        epoch's end stood idle for up to two minutes). Several replicas keep it (it splits
        each batch between them), as do several workers (their strategy has no other way)."""
        if not isinstance(self.strategy, tf.distribute.MirroredStrategy) or \
                self.strategy.num_replicas_in_sync != 1:
            return None
        return tf.distribute.InputOptions(
            experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA,
            experimental_fetch_to_device=False)

    def total_steps(self) -> int:
        """The step the run ends at: ``num_epochs`` epochs, or ``max_steps`` when sooner."""
        total = self.options.num_epochs * self.steps_per_epoch
        return min(total, self.options.max_steps) if self.options.max_steps else total

    def train(self) -> str:
        """Trains until num_epochs or max_steps; returns why it stopped: ``done``, or
        ``non-finite loss|validation|weights`` (logged with the last good checkpoint)."""
        self.initialize()
        self.log.info("training %s on %d samples, %d steps per epoch, %d replica(s)",
                      self.options.model_name, len(self.data.train), self.steps_per_epoch,
                      self.strategy.num_replicas_in_sync)
        self.times = PhaseTimes(self.options.batch_size, int(self.trainer.iterations.numpy()))
        try:
            self._train_steps()
        except NonFiniteError as error:
            return self._stop(error.kind, error)
        except NonFiniteWeightsError as error:
            return self._stop("weights", error)
        finally:
            self.logs.timings(self.times.record(int(self.trainer.iterations.numpy())))
        return "done"

    def _stop(self, kind: str, error: Exception) -> str:
        """Logs why the run stops at a non-finite value; returns the outcome."""
        self.log.error("%s: stopping; the last good checkpoint is %s", error,
                       self.checkpoints.latest)
        return f"non-finite {kind}"

    def _train_steps(self) -> None:
        """The loop of :meth:`train`, from the restored step to the last.

        Raises:
            NonFiniteError, NonFiniteWeightsError: see :meth:`train`.
        """
        o = self.options
        step, total_steps = int(self.trainer.iterations.numpy()), self.total_steps()
        if step == 0:  # a fresh run: the untrained network's score first, as epoch -1
            self.validate(-1)
        started, start_step = time.time(), step
        if step < total_steps:  # one iterator for the whole run
            batches = iter(self._dataset(step, total_steps))
        while step < total_steps:
            epoch = step // self.steps_per_epoch
            self.checkpoints.epoch.assign(epoch)
            while True:
                batch = next(batches)
                result = self.trainer.train_step(batch)
                loss = float(result.total)
                if not math.isfinite(loss):
                    raise NonFiniteError("loss", f"loss is {loss} at step {step}")
                step += 1
                self.logs.step(step, total_steps, result, self.trainer.optimizer.learning_rate,
                               started, start_step, self.steps_per_epoch)
                self.times.step_done()
                if step % o.log_frequency == 0 or step == start_step + 1:
                    self._log_images(step, batch)
                ends_epoch = step >= total_steps or step % self.steps_per_epoch == 0
                if ends_epoch:  # checkpointed after the epoch's validation and weights
                    break
                if o.save_steps and step % o.save_steps == 0:
                    self.save_checkpoint(step)
            if step % self.steps_per_epoch == 0:
                self._end_epoch(step // self.steps_per_epoch, step)
            elif step >= total_steps:  # stopped inside an epoch (--max_steps)
                self.validate(step // self.steps_per_epoch)
        if self.checkpoints.latest_step != step:  # (an epoch's end has just saved it)
            self.save_checkpoint(step)
        self.save_weights("weights_final")

    def _end_epoch(self, finished: int, step: int) -> None:
        """After ``finished`` epochs: validation, every ``save_frequency`` epochs a weight
        folder, then the checkpoint: a run killed before that checkpoint resumes from an
        earlier one and does the epoch's end again, so none of it is lost."""
        self.validate(finished - 1)
        if finished % self.options.save_frequency == 0:
            self.save_weights(f"weights_{finished - 1}")
        self.checkpoints.epoch.assign(finished)
        self.save_checkpoint(step)

    def _log_images(self, step: int, distributed_batch) -> None:
        """Up to four samples of the first replica's batch, through the networks in inference
        mode (a training-mode pass would move BatchNorm's statistics), as TensorBoard images."""
        local = self.strategy.experimental_local_results
        with self.times.phase("images"):
            batch = tf.nest.map_structure(lambda t: local(t)[0][:4], distributed_batch)
            outputs, losses = self.inference(batch)
            self.logs.images(step, batch, outputs, losses)
