"""Validation during training: the val split's loss, and its depth metrics against LiDAR.

At each epoch's end the networks (inference mode) run on the val samples, unaugmented: their
mean training loss is always reported, and when the LiDAR scans are there each depth
prediction is scored by the evaluation protocol (:func:`evaluation.evaluate_image`: disparity
resized to the ground truth's size, Garg crop, per-image median scaling, depth range 1e-3..80),
against the LiDAR depth of the sample's camera nearest-resized to 375x1242 as the
original's validation does. The original scores one val batch at every log step; here a fixed,
evenly spread subset of the list (``--val_samples``) is scored once per epoch, so that epochs
are comparable and the best weights can be chosen by ``abs_rel``.
"""

import dataclasses
import logging
import math
from typing import List, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from monodepth_tf.data.layout import Layout
from monodepth_tf.data.pipeline import PipelineOptions, make_dataset, make_validation_dataset
from monodepth_tf.data.splits import SplitEntry
from monodepth_tf.evaluation.depth import METRIC_NAMES, evaluate_image, summarize
from monodepth_tf.geometry.depth import disp_to_depth
from monodepth_tf.losses.options import LossOptions
from monodepth_tf.training.step import as_float32


def spread_subset(entries: List[SplitEntry], count: int) -> List[SplitEntry]:
    """``count`` entries spread evenly over the list (all of them when ``count`` is 0 or at
    least the list's length), in list order."""
    if count <= 0 or count >= len(entries):
        return list(entries)
    picks = np.linspace(0, len(entries) - 1, count).round().astype(int)
    return [entries[i] for i in picks]


def lidar_missing(layout: Layout, entries: List[SplitEntry]) -> Optional[str]:
    """Why ``entries`` have no LiDAR ground truth (the first missing velodyne scan or
    calibration file, or a layout without LiDAR at all, ``has_lidar = False``, such as your
    own videos), or None when every file is there."""
    if not layout.has_lidar:
        return f"{layout.root} is a dataset without LiDAR"
    for entry in entries:
        calib = layout.calib_dir(entry.folder)
        for path in (layout.velodyne_path(entry.folder, entry.frame_index),
                     calib / "calib_cam_to_cam.txt", calib / "calib_velo_to_cam.txt"):
            if not path.is_file():
                return f"{path} is missing"
    return None


class ValidationResult(NamedTuple):
    """What one validation pass measured.

    Attributes:
        loss: the mean training loss (photometric + smoothness) of the val samples, networks in
            inference mode, no augmentation.
        depth: :func:`evaluation.summarize` of the samples' depth metrics (``abs_rel`` ...,
            ``ratio_median``, ``ratio_std``), or None without LiDAR ground truth.
    """

    loss: float
    depth: Optional[dict]

    def non_finite(self) -> List[str]:
        """``name value`` of each score (the loss, the depth metrics) that is NaN or
        infinite."""
        scores = dict(loss=self.loss, **{m: self.depth[m] for m in METRIC_NAMES
                                          if self.depth and m in self.depth})
        return [f"{name} {value}" for name, value in scores.items() if not math.isfinite(value)]


class InferencePass:
    """``system`` in inference mode on a batch -> ``(outputs in float32, losses)``: what
    validation scores and what TensorBoard's images show.

    One tf.function, traced once for every batch size (its batch axis is left unknown): a
    last, smaller val batch and the logged training samples reuse the trace, and each trace of
    the networks and the whole loss took seconds.

    Args:
        system: the training system (:class:`~monodepth_tf.model.Monodepth2`).
        loss_options: the training loss.
    """

    def __init__(self, system, loss_options: LossOptions):
        self.system, self.loss_options = system, loss_options
        self.function = tf.function(self._forward, autograph=False)

    def _forward(self, batch):
        outputs = as_float32(self.system(batch, training=False))
        return outputs, self.system.loss(batch, outputs, self.loss_options)

    def __call__(self, batch):
        if self.function.experimental_get_tracing_count() == 0:
            self.function.get_concrete_function(tf.nest.map_structure(
                lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), batch))
        return self.function(batch)


@dataclasses.dataclass
class Validator:
    """Scores the training system on val samples: the loss always, depth metrics against
    LiDAR when every scan of the samples is there.

    Args:
        layout: where the frames and scans are.
        entries: the val samples (see :func:`spread_subset`).
        pipeline: the training pipeline's options (feed size, frames; augmentation is off).
        loss_options: the training loss.
        with_depth: score depth against LiDAR (see :func:`lidar_missing`).
        batch_size: samples per forward pass.
    """

    layout: Layout
    entries: List[SplitEntry]
    pipeline: PipelineOptions
    loss_options: LossOptions
    with_depth: bool
    batch_size: int = 8

    def __post_init__(self):
        self._data = None  # the val dataset, built (and its map function traced) once

    def dataset(self) -> tf.data.Dataset:
        """The val samples, unaugmented, in list order: ``(Batch, depth_gt or None)``."""
        if self._data is None:
            pipeline = dataclasses.replace(self.pipeline, augment=False)
            if self.with_depth:
                self._data = make_validation_dataset(self.layout, self.entries, pipeline,
                                                     self.batch_size)
            else:
                self._data = make_dataset(self.layout, self.entries, pipeline, self.batch_size,
                                          shuffle=False, drop_remainder=False).map(
                    lambda batch: (batch, None))
        return self._data

    def __call__(self, inference: InferencePass) -> ValidationResult:
        """Scores the system of ``inference`` (its traced pass)."""
        losses, counts, results = [], [], []
        for batch, depth_gt in self.dataset():
            outputs, loss_terms = inference(batch)
            disps = disp_to_depth(outputs.disps[0][..., 0], self.loss_options.min_depth,
                                  self.loss_options.max_depth)[0]
            losses.append(float(loss_terms.total))
            counts.append(len(disps))
            if self.with_depth:
                results += [evaluate_image(gt, disp, garg_crop=True, median_scaling=True)
                            for gt, disp in zip(depth_gt.numpy(), disps.numpy())]
        depth = summarize(results, median_scaling=True) if self.with_depth else None
        return ValidationResult(float(np.average(losses, weights=counts)), depth)


def make_validator(layout: Layout, val: List[SplitEntry], options, pipeline: PipelineOptions,
                   log: logging.Logger) -> Optional[Validator]:
    """The run's validator: ``options.val_samples`` entries spread over ``val``, with depth
    metrics when their LiDAR files are all there; None (logged) without val samples.

    Args:
        options: the run's :class:`~monodepth_tf.training.options.TrainOptions`.
        pipeline: how training prepares samples (validation turns augmentation off).
        log: where to say what validation will measure.
    """
    entries = spread_subset(val, options.val_samples)
    if not entries:
        log.info("no val samples: no validation")
        return None
    missing = lidar_missing(layout, entries)
    if missing:
        log.info("validation: loss only (no LiDAR ground truth: %s)", missing)
    return Validator(layout, entries, pipeline, options.loss_options(),
                     with_depth=missing is None, batch_size=options.batch_size)
