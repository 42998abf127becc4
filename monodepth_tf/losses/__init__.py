"""Monodepth2's self-supervised loss (see :mod:`monodepth_tf.losses.total` for the recipe).

The modules: ``options`` (what the loss is told and returns), ``ssim`` (SSIM and the
photometric error), ``smoothness``, ``upsample`` (disparities to the input size),
``reprojection`` (warping sources into the target view) and ``total`` (``compute_losses``).
"""

from monodepth_tf.losses.options import LossOptions, LossOutputs, Pose
from monodepth_tf.losses.smoothness import edge_aware_smoothness
from monodepth_tf.losses.ssim import SSIM, photometric_error, ssim_dissimilarity
from monodepth_tf.losses.total import compute_losses

__all__ = ["SSIM", "LossOptions", "LossOutputs", "Pose", "compute_losses",
           "edge_aware_smoothness", "photometric_error", "ssim_dissimilarity"]
