"""monodepth_tf: self-supervised monocular depth estimation (Monodepth2) in TensorFlow/Keras.

The public surface: the networks (``DepthNet``, ``PoseNet`` and their parts), the geometry
layers, the loss, and weights folders (``load_networks``, ``save_weights_folder``).
"""

__version__ = "0.1.0"

from monodepth_tf.geometry import (BackprojectDepth, BilinearSampler, Project3D,  # noqa: E402
                                   bilinear_sample, disp_to_depth,
                                   transformation_from_parameters)
from monodepth_tf.losses import SSIM, LossOptions, compute_losses  # noqa: E402
from monodepth_tf.models import DepthNet, PoseNet  # noqa: E402
from monodepth_tf.networks import DepthDecoder, PoseCNN, PoseDecoder, ResnetEncoder  # noqa: E402
from monodepth_tf.weights.folder import load_networks, save_weights_folder  # noqa: E402

__all__ = ["BackprojectDepth", "BilinearSampler", "DepthDecoder", "DepthNet", "LossOptions",
           "PoseCNN", "PoseDecoder", "PoseNet", "Project3D", "ResnetEncoder", "SSIM",
           "bilinear_sample", "compute_losses", "disp_to_depth", "load_networks",
           "save_weights_folder", "transformation_from_parameters"]
