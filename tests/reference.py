"""Reading the original implementation's reference fixtures (NCHW) into our layouts (NHWC), and
the loss fixture's inputs as a ``Batch`` with poses."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from monodepth_tf.data.batch import Batch
from monodepth_tf.losses.options import LossOptions, Pose
from monodepth_tf.losses.total import compute_losses


def nhwc(array: np.ndarray) -> np.ndarray:
    """``[N, C, H, W]`` -> ``[N, H, W, C]``."""
    return np.ascontiguousarray(np.transpose(array, (0, 2, 3, 1)))


def load_npz(reference_dir: Path, name: str) -> dict:
    path = Path(reference_dir) / name
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def relative_to_std(actual: np.ndarray, expected: np.ndarray) -> float:
    """Max absolute error divided by the expected values' standard deviation."""
    return float(np.max(np.abs(actual - expected)) / np.std(expected))


# ---- the loss fixture (losses.npz) as our inputs --------------------------------------------

SCALES = (0, 1, 2, 3)
OPTION_SETS = {
    "mono_stereo": dict(frame_ids=(0, -1, 1, "s")),
    "mono": dict(frame_ids=(0, -1, 1)),
    "stereo": dict(frame_ids=(0, "s")),
    "mono_avg_reprojection": dict(frame_ids=(0, -1, 1), avg_reprojection=True),
    "mono_no_automask": dict(frame_ids=(0, -1, 1), disable_automasking=True),
    "mono_v1_multiscale": dict(frame_ids=(0, -1, 1), v1_multiscale=True),
    "mono_no_ssim": dict(frame_ids=(0, -1, 1), no_ssim=True),
}


def make_batch(ref) -> Batch:
    color = {key: tuple(tf.constant(nhwc(ref[f"inputs/color/{key}/{s}"])) for s in SCALES)
             for key in ("-1", "0", "1", "s")}
    return Batch(
        color=color,
        color_aug={key: images[0] for key, images in color.items()},
        K=tuple(tf.constant(ref[f"inputs/K/{s}"]) for s in SCALES),
        inv_K=tuple(tf.constant(ref[f"inputs/inv_K/{s}"]) for s in SCALES),
        stereo_T=tf.constant(ref["inputs/stereo_T"]),
    )


def make_poses(ref):
    return {key: Pose(tf.constant(ref[f"net/axisangle/0/{key}"][:, 0, 0]),
                      tf.constant(ref[f"net/translation/0/{key}"][:, 0, 0]))
            for key in ("-1", "1")}


def run(ref, name, exact=True):
    """The loss of option set ``name`` on the fixture's inputs, tie-breaking noise off."""
    options = LossOptions(scales=SCALES, automask_noise=0.0, exact=exact, **OPTION_SETS[name])
    disps = [tf.constant(nhwc(ref[f"net/disp/{s}"])) for s in SCALES]
    return compute_losses(make_batch(ref), disps, make_poses(ref), options)
