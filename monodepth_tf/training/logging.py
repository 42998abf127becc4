"""What a run reports: ``train.log`` (and stdout), TensorBoard scalars and images,
``metrics.jsonl``, ``timings.jsonl`` and the progress bar.

Scalars (losses, learning rate, samples/s) are written every ``log_frequency`` steps (and at the
first and last step), the losses as the mean of the steps since the last write.
"""

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, TextIO

import tensorflow as tf

from monodepth_tf.evaluation.depth import METRIC_NAMES
from monodepth_tf.progress import bar
from monodepth_tf.training.summaries import (disparity_images, mask_images, to_uint8, write_images,
                                             write_scalar)
from monodepth_tf.training.timings import TIMINGS_FILE, summary_line

# One JSON object per validation (see RunLog.validation), in the run folder.
METRICS_FILE = "metrics.jsonl"


def make_logger(path: Path) -> logging.Logger:
    """A logger writing to ``path`` and to stdout, ``<date> <time> <message>`` per line."""
    logger = logging.getLogger(f"monodepth_tf.run.{path}")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        formatter = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S")
        for handler in (logging.FileHandler(path), logging.StreamHandler(sys.stdout)):
            handler.setFormatter(formatter)
            logger.addHandler(handler)
        logger.propagate = False
    return logger


def terminal_stderr() -> Optional[TextIO]:
    """stderr when it is a terminal, else None: the progress bar is for people watching (log
    files get the log lines)."""
    return sys.stderr if sys.stderr.isatty() else None


def progress_line(step: int, total: int, loss: float, rate: float, remaining: float,
                  width: int = 24) -> str:
    """``[#########...............]  120/300 loss 0.12345  8.1 samples/s ETA 00:00:22``"""
    eta = time.strftime("%H:%M:%S", time.gmtime(remaining))
    return (f"{bar(step, total, width)} {step:>{len(str(total))}}/{total} "
            f"loss {loss:.5f} {rate:5.1f} samples/s ETA {eta}")


class RunLog:
    """A run's logs, in the run folder.

    Args:
        run_dir: the run folder (``train.log``, ``metrics.jsonl``, ``tensorboard/``).
        scales: the loss scales (one ``loss/<scale>`` scalar each).
        batch_size: samples per step (for samples/s).
        log_frequency: steps between scalar writes and log lines.
        progress: where the progress bar is redrawn at every step (None: no bar; see
            :func:`terminal_stderr`).

    Attributes:
        logger: the run's logger (``train.log`` and stdout).
        writer: the TensorBoard summary writer.
    """

    def __init__(self, run_dir: Path, scales: Sequence[int], batch_size: int,
                 log_frequency: int, progress: Optional[TextIO] = None):
        self.run_dir = Path(run_dir)
        self.scales, self.batch_size, self.log_frequency = scales, batch_size, log_frequency
        self.logger = make_logger(self.run_dir / "train.log")
        self.writer = tf.summary.create_file_writer(str(self.run_dir / "tensorboard"))
        self.progress = progress
        # per-step losses (total, then per scale) since scalars were last written
        self._unwritten_losses: List[List[float]] = []

    def step(self, step: int, total: int, losses, learning_rate, started: float,
             start_step: int, steps_per_epoch: int) -> None:
        """Progress bar every step; every ``log_frequency`` steps (and at the first and the
        last) a log line and the scalars: the losses averaged over the steps since the last
        write, the learning rate and samples/s at this step.

        Args:
            step: the step just taken (1 = the first); total: the run's last step.
            losses: the step's ``total`` and ``per_scale`` losses.
            learning_rate: the optimizer's learning rate now.
            started, start_step: ``time.time()`` and the step when this process started.
            steps_per_epoch: for the epoch in the log line.
        """
        elapsed = time.time() - started
        rate = (step - start_step) * self.batch_size / max(elapsed, 1e-9)
        self._unwritten_losses.append([float(losses.total)]
                                      + [float(v) for v in losses.per_scale])
        remaining = (total - step) * self.batch_size / max(rate, 1e-9)
        if self.progress is not None:
            print("\r" + progress_line(step, total, float(losses.total), rate, remaining),
                  end="\n" if step == total else "", file=self.progress, flush=True)
        if step % self.log_frequency and step != total and step != start_step + 1:
            return
        means = [math.fsum(column) / len(column) for column in zip(*self._unwritten_losses)]
        self._unwritten_losses = []
        with self.writer.as_default(step=step):
            write_scalar("loss", means[0])
            for s, value in zip(self.scales, means[1:]):
                write_scalar(f"loss/{s}", value)
            write_scalar("learning_rate", learning_rate)
            write_scalar("samples_per_s", rate)
        self.logger.info("epoch %d step %d/%d loss %.5f %.2f samples/s ETA %s",
                         (step - 1) // steps_per_epoch, step, total, float(losses.total),
                         rate, time.strftime("%H:%M:%S", time.gmtime(remaining)))

    def images(self, step: int, batch, outputs, losses) -> None:
        """The inputs of ``batch``, the disparity of each scale (colour-mapped) and, with
        auto-masking, the scale-0 auto-mask, as TensorBoard images."""
        with self.writer.as_default(step=step):
            write_images("color/0", list(to_uint8(batch.color["0"][0].numpy())))
            for scale, disp in zip(self.scales, outputs.disps):
                write_images(f"disp/{scale}", disparity_images(disp.numpy()))
            if losses.identity_selection:
                write_images("automask/0", mask_images(losses.identity_selection[0].numpy()))

    def validation(self, epoch: int, step: int, result) -> None:
        """A validation's scores: TensorBoard scalars, a line of ``metrics.jsonl`` and a log
        line (epoch -1: the untrained network).

        Args:
            result: the validator's ``loss`` and ``depth`` metrics (None without ground truth).
        """
        with self.writer.as_default(step=step):
            write_scalar("val/loss", result.loss)
            for name, value in (result.depth or {}).items():
                write_scalar(f"val/{name}", value)
        record = {"epoch": epoch, "step": step, "loss": result.loss}
        record.update({m: result.depth[m] for m in METRIC_NAMES} if result.depth else {})
        with open(self.run_dir / METRICS_FILE, "a") as metrics_file:
            metrics_file.write(json.dumps(record) + "\n")
        if result.depth is None:
            self.logger.info("epoch %d val loss %.5f", epoch, result.loss)
            return
        metrics = " ".join(f"{m} {result.depth[m]:.4f}" for m in METRIC_NAMES)
        self.logger.info("epoch %d val loss %.5f %s", epoch, result.loss, metrics)

    def timings(self, record: dict) -> None:
        """A training process's timings (:meth:`~monodepth_tf.training.timings.PhaseTimes.record`):
        a line of ``timings.jsonl`` and a log line."""
        with open(self.run_dir / TIMINGS_FILE, "a") as timings_file:
            timings_file.write(json.dumps(record) + "\n")
        self.logger.info("%s", summary_line(record))
