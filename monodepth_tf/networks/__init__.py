"""Monodepth2's networks as Keras models (NHWC): the parts (ResNet encoder, depth decoder, pose
decoder, PoseCNN) and the assembled ``DepthNet`` and ``PoseNet``."""

from monodepth_tf.networks.depth_decoder import DepthDecoder
from monodepth_tf.networks.depth_net import DepthNet
from monodepth_tf.networks.pose_cnn import PoseCNN
from monodepth_tf.networks.pose_decoder import PoseDecoder
from monodepth_tf.networks.pose_net import PoseNet, build_shared_pose_decoder
from monodepth_tf.networks.resnet_encoder import ResnetEncoder, encoder_channels

__all__ = ["DepthDecoder", "DepthNet", "PoseCNN", "PoseDecoder", "PoseNet", "ResnetEncoder",
           "build_shared_pose_decoder", "encoder_channels"]
