"""Monodepth2's networks as Keras subclassed models (NHWC)."""

from monodepth_tf.networks.depth_decoder import DepthDecoder
from monodepth_tf.networks.pose_networks import PoseCNN, PoseDecoder
from monodepth_tf.networks.resnet_encoder import ResnetEncoder, encoder_channels

__all__ = ["DepthDecoder", "PoseCNN", "PoseDecoder", "ResnetEncoder", "encoder_channels"]
