"""Where a run's weights come from and where they go.

At the start: the newest checkpoint (a resumed run), else a weights folder
(``--load_weights_folder``), ImageNet encoders (``--weights_init=pretrained``) or a scratch
start. During and after the run: ``checkpoints/`` (TensorFlow's manager: networks, Adam, the
epoch and the best val abs_rel) and the weight folders ``models/weights_<name>/``.
"""

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional

import tensorflow as tf

from monodepth_tf.config import ModelConfig, PoseModelType
from monodepth_tf.download import DownloadError, download
from monodepth_tf.files import WriteError, check_free_space, first_line
from monodepth_tf.training.options import OptionsError, TrainOptions
from monodepth_tf.training.step import Trainer
from monodepth_tf.weights.folder import (load_weights_folder, require_finite, save_weights_folder,
                                         variable_bytes)
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
# Where a scratch mono run's translations start (the pose output's bias; see
# PoseDecoder.start_translations_at): forward motion of about 1 m per frame (KITTI's 10 Hz at
# 36 km/h), in the units of SCRATCH_DISPARITY (0.54 m is 0.1). The original's pose networks
# start near zero translation (0.01 times a small output). Without stereo nothing else sets the
# scale, and the depth consistent with a ~0.01 translation lies below min_depth: the disparity
# sigmoid saturates and some seeds never recover; starting at this motion, the depth that
# explains the frames starts where SCRATCH_DISPARITY puts it. A stereo run takes its scale from
# stereo_T and keeps the original's start.
SCRATCH_TRANSLATION = -0.2
CHECKPOINT_PREFIX = "ckpt"


class CheckpointWriteError(WriteError):
    """Writing a checkpoint failed (an I/O error, the disk filled up); the previous ones stand."""


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


def initial_weights(options: TrainOptions, trainer: Trainer) -> Optional[str]:
    """Sets a fresh run's starting weights as the options ask; returns what was loaded (to
    log), None for a scratch start.

    A weights folder loads ``models_to_load``; ``pretrained`` loads ImageNet into the encoders
    (the pose encoder too with ``separate_resnet``); ``scratch`` starts the disparity heads at
    :data:`SCRATCH_DISPARITY`, and in a run without stereo the translations at
    :data:`SCRATCH_TRANSLATION`.
    """
    system = trainer.system
    if options.load_weights_folder:
        load_weights_folder(options.load_weights_folder, system.depth, system.pose,
                            options.models_to_load)
        return f"loaded {', '.join(options.models_to_load)} from {options.load_weights_folder}"
    if options.weights_init == "pretrained":
        path = imagenet_checkpoint(options.num_layers)
        load_imagenet_resnet(system.depth.encoder, path)
        if system.pose is not None and options.pose_model_type == PoseModelType.SEPARATE_RESNET:
            load_imagenet_resnet(system.pose.encoder, path)
        return f"encoders initialized from ImageNet weights {path}"
    system.depth.decoder.start_disparities_at(SCRATCH_DISPARITY)
    pose = system.pose if system.pose is not None else system.shared_pose
    if pose is not None and not options.use_stereo:
        pose.start_translations_at(SCRATCH_TRANSLATION)
    return None


def weights_config(options: TrainOptions, with_pose: bool) -> ModelConfig:
    """The ``config.json`` of the run's weight folders (``with_pose``: the run has a pose
    network of its own)."""
    config = options.model_config()
    return config if with_pose else dataclasses.replace(config, pose_model_type=None)


class RunCheckpoints:
    """A run's checkpoints and weight folders.

    Args:
        run_dir: the run folder (``checkpoints/`` and ``models/`` go inside).
        trainer: the step (its networks, optimizer and step counter are checkpointed).
        config: the architecture written to every weight folder's ``config.json``.
        max_to_keep: checkpoints kept.

    Attributes:
        epoch: the current epoch (a checkpointed variable).
        best_abs_rel: the lowest val abs_rel so far (checkpointed, so that a resumed run keeps
            the best).
    """

    def __init__(self, run_dir: Path, trainer: Trainer, config: ModelConfig,
                 max_to_keep: int = 3):
        self.run_dir, self.trainer, self.config = Path(run_dir), trainer, config
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best_abs_rel = tf.Variable(float("inf"), dtype=tf.float64, trainable=False)
        self._checkpoint = trainer.checkpoint(epoch=self.epoch, best_abs_rel=self.best_abs_rel)
        self._manager = tf.train.CheckpointManager(self._checkpoint, self.run_dir / "checkpoints",
                                                   checkpoint_name=CHECKPOINT_PREFIX,
                                                   max_to_keep=max_to_keep)

    @property
    def latest(self) -> Optional[str]:
        """The newest checkpoint's path prefix (None before the first save)."""
        return self._manager.latest_checkpoint

    @property
    def latest_step(self) -> Optional[int]:
        """The newest checkpoint's number (the step it was saved at), None before the first."""
        return int(self.latest.rsplit("-", 1)[1]) if self.latest else None

    def restore_latest(self) -> bool:
        """Restores the newest checkpoint, if any (every saved object must match)."""
        if not self.latest:
            return False
        self._checkpoint.restore(self.latest).assert_existing_objects_matched()
        return True

    def save(self, step: int) -> None:
        """A checkpoint numbered ``step`` (the manager keeps the newest ``max_to_keep``).

        Written only when the disk has room for it; a write that fails midway (an I/O error,
        the disk filling up meanwhile) is removed, and the previous checkpoints stay as they
        were, the newest still the one a restart resumes from.

        Raises:
            NonFiniteWeightsError: a network or optimizer variable holds NaN or infinity;
                nothing is written, the previous checkpoints stay the newest.
            DiskSpaceError: too little space (checked first: nothing is written).
            CheckpointWriteError: the write failed; the message names the intact checkpoint.
        """
        require_finite(self.trained_variables(), f"checkpoint {step} of {self.run_dir}")
        folder = self.run_dir / "checkpoints"
        check_free_space(folder, self.size_bytes(), f"checkpoint {step} in {folder}")
        try:
            self._manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as error:
            remove_partial_checkpoint(folder, step)
            kept = (f"the newest checkpoint, {self.latest}, is intact: resume from it with the "
                    "same command" if self.latest else "no earlier checkpoint exists")
            raise CheckpointWriteError(f"writing checkpoint {step} in {folder} failed "
                                       f"({first_line(error)}); {kept}") from None

    def size_bytes(self) -> int:
        """What a checkpoint takes on disk: the bytes of every variable it holds."""
        return variable_bytes(self.variables())

    def trained_variables(self) -> List[tf.Variable]:
        """The networks' variables (BatchNorm statistics included) and Adam's step and
        moments."""
        networks = self.trainer.system.networks().values()
        return [v for net in networks for v in net.variables] + list(
            self.trainer.optimizer.variables)

    def variables(self) -> List[tf.Variable]:
        """Every variable a checkpoint holds: :meth:`trained_variables`, the epoch and the best
        val abs_rel."""
        return self.trained_variables() + [self.epoch, self.best_abs_rel]

    def is_new_best(self, abs_rel: float) -> bool:
        """Whether ``abs_rel`` beats the best so far (then it becomes the best)."""
        if abs_rel >= float(self.best_abs_rel.numpy()):
            return False
        self.best_abs_rel.assign(abs_rel)
        return True

    def save_weights(self, name: str, extra: Optional[Dict] = None) -> Path:
        """Writes ``models/<name>/`` (the config, the step and ``extra`` in config.json).

        Raises:
            NonFiniteWeightsError: a network variable holds NaN or infinity (nothing written;
                see :func:`~monodepth_tf.weights.folder.save_weights_folder`).
        """
        system = self.trainer.system
        extra = dict(extra or {}, step=int(self.trainer.iterations.numpy()))
        return save_weights_folder(self.run_dir / "models" / name, self.config, system.depth,
                                   system.pose, extra=extra)


def remove_partial_checkpoint(folder: Path, step: int) -> None:
    """Deletes what a failed write of checkpoint ``step`` left: its index and data files and
    TensorFlow's temporary folder (the other checkpoints and the manager's state are untouched).
    """
    for path in folder.glob(f"{CHECKPOINT_PREFIX}-{step}[._]*"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
