"""What the loss is told and what it returns: its options, a predicted pose, its outputs.
"""

import dataclasses
from typing import Dict, NamedTuple, Tuple

import tensorflow as tf

from monodepth_tf.data.frames import FrameId, frame_key

AUTOMASK_NOISE = 1e-5


@dataclasses.dataclass(frozen=True)
class LossOptions:
    """The options of the original that change the loss (same names and defaults).

    ``automask_noise`` is the std of the noise added to the identity error to break ties
    (``0`` makes the loss deterministic). ``posecnn`` scales the predicted translation by the
    target's mean inverse depth, as the original does for its PoseCNN. With
    ``pose_model_input="all"`` the poses are used as predicted; with ``"pairs"`` the motion
    predicted for a pair (earlier frame first) is inverted for frames before the target.
    ``exact=False`` (the default) computes everything in float32: what suits GPUs, where float64
    runs at 1/32-1/64 of float32's speed; its photometric errors and bilinear sampling (forward
    and gradient) are each compiled by XLA, which fuses their passes over the images.
    ``exact=True`` reproduces the original's roundings --
    the rotation angle, the disparity upsampling and the sampler's corners summed with fused
    multiply-adds, emulated in float64 (see :func:`geometry.fused_multiply_add`) -- so that
    depths, sampling grids, warped images and auto-masks equal the original's bit for bit
    (tests/test_losses.py). On the reference fixtures the float32 path moves sampling grids by
    at most 1e-4 pixels, flips at most 0.1% of the auto-mask decisions (near-ties, about as
    many as the original's own float32 mask differs from its float64 definition) and changes
    the losses by at most 1e-5 relative (tests/test_fast_paths.py bounds each).
    """

    frame_ids: Tuple[FrameId, ...] = (0, -1, 1)
    scales: Tuple[int, ...] = (0, 1, 2, 3)
    min_depth: float = 0.1
    max_depth: float = 100.0
    disparity_smoothness: float = 1e-3
    v1_multiscale: bool = False
    avg_reprojection: bool = False
    disable_automasking: bool = False
    predictive_mask: bool = False
    no_ssim: bool = False
    posecnn: bool = False
    pose_model_input: str = "pairs"
    automask_noise: float = AUTOMASK_NOISE
    exact: bool = False

    def __post_init__(self):
        if frame_key(self.frame_ids[0]) != "0":
            raise ValueError(f"frame_ids must start with the target frame 0, got {self.frame_ids}")
        if len(self.frame_ids) < 2:
            raise ValueError("frame_ids needs at least one source frame besides 0 "
                             "(e.g. 0 -1 1, or 0 s with use_stereo)")
        if self.predictive_mask and not self.disable_automasking:
            raise ValueError("predictive_mask requires disable_automasking, as in the original")


class Pose(NamedTuple):
    """A pose network's prediction for one source frame: axisangle, translation ``[B, 3]``."""

    axisangle: tf.Tensor
    translation: tf.Tensor


class LossOutputs(NamedTuple):
    """What the loss computes; per-scale tuples follow ``LossOptions.scales``.

    Attributes:
        total: scalar, the mean of the per-scale losses.
        per_scale: scalars, each including its smoothness term.
        depth: ``[B, h, w, 1]`` depth used for warping (input size, or the scale's with
            v1_multiscale).
        sample: ``{source key: per-scale [B, h, w, 2]}`` sampling grids in [-1, 1].
        warped: ``{source key: per-scale [B, h, w, 3]}`` the sources warped into the target view.
        identity_selection: per-scale ``[B, h, w]``, 1 where a warped source beat every unwarped
            one (empty when auto-masking is disabled).
    """

    total: tf.Tensor
    per_scale: Tuple[tf.Tensor, ...]
    depth: Tuple[tf.Tensor, ...]
    sample: Dict[str, Tuple[tf.Tensor, ...]]
    warped: Dict[str, Tuple[tf.Tensor, ...]]
    identity_selection: Tuple[tf.Tensor, ...]
