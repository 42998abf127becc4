"""The networks of one Monodepth2 configuration, and how a batch flows through them.

``Monodepth2`` owns the depth network, the pose network (separate ResNet, PoseCNN, or the
``shared`` decoder on the depth encoder's features) and the optional predictive-mask decoder,
and turns a batch into what the loss needs: disparities per scale and a pose per temporal
source frame.
"""

from typing import Dict, List, NamedTuple, Optional

import tensorflow as tf

from monodepth_tf.config import ModelConfig, PoseModelType, pose_model_type
from monodepth_tf.data.batch import Batch
from monodepth_tf.data.frames import STEREO, frame_key, frame_offset
from monodepth_tf.losses.options import LossOptions, LossOutputs, Pose
from monodepth_tf.losses.total import compute_losses
from monodepth_tf.networks.depth_decoder import DepthDecoder
from monodepth_tf.networks.depth_net import DepthNet
from monodepth_tf.networks.layers import build
from monodepth_tf.networks.pose_net import PoseNet, build_shared_pose_decoder


class NetworkOutputs(NamedTuple):
    """What the networks predict for one batch.

    Attributes:
        disps: per scale, ``[B, H/2**s, W/2**s, 1]`` sigmoid disparities of frame 0.
        poses: ``{temporal source key: Pose}`` (axis-angle and translation ``[B, 3]``).
        masks: per scale, ``[B, H/2**s, W/2**s, num_sources]`` predictive masks (or empty).
    """

    disps: List[tf.Tensor]
    poses: Dict[str, Pose]
    masks: List[tf.Tensor]


class Monodepth2:
    """The networks of one configuration, built and ready to train or predict.

    Args:
        config: the architecture.
    """

    def __init__(self, config: ModelConfig):
        if config.pose_model_input not in ("pairs", "all"):
            raise ValueError(f"--pose_model_input must be pairs or all, "
                             f"got {config.pose_model_input!r}")
        pose_model_type(config.pose_model_type)  # a ValueError naming the choices
        self.config = config
        self.depth = build(DepthNet(config.num_layers, config.scales), 3)
        self.pose: Optional[PoseNet] = None
        self.shared_pose = None
        if config.uses_pose_net:
            if config.pose_model_type == PoseModelType.SHARED:
                self.shared_pose = build_shared_pose_decoder(self.depth.encoder.num_ch_enc,
                                                             config.num_pose_frames)
            else:
                self.pose = build(PoseNet(config.num_layers, config.num_pose_frames,
                                          config.pose_model_type),
                                  3 * config.num_pose_frames)
        self.mask_decoder = None
        if config.predictive_mask:
            self.mask_decoder = DepthDecoder(self.depth.encoder.num_ch_enc, config.scales,
                                             num_output_channels=len(config.frame_ids) - 1,
                                             name="predictive_mask")
            self.mask_decoder(self.depth.encoder(tf.zeros([1, 64, 64, 3])))

    @property
    def trainable_variables(self) -> List[tf.Variable]:
        variables = list(self.depth.trainable_variables)
        for network in (self.pose, self.shared_pose, self.mask_decoder):
            if network is not None:
                variables += network.trainable_variables
        return variables

    def networks(self) -> Dict[str, tf.Module]:
        """The trackable networks by name, for checkpoints."""
        named = {"depth": self.depth, "pose": self.pose, "shared_pose": self.shared_pose,
                 "predictive_mask": self.mask_decoder}
        return {k: v for k, v in named.items() if v is not None}

    def __call__(self, batch: Batch, training: bool = False) -> NetworkOutputs:
        """Runs the networks on a batch (networks see the colour-augmented images)."""
        options = self.config
        temporal = options.temporal_keys
        target = batch.color_aug["0"]
        if options.pose_model_type == PoseModelType.SHARED and temporal:
            # The depth encoder runs on every frame at once; the decoder sees frame 0 only.
            keys = ["0", *temporal]
            stacked = self.depth.encoder(tf.concat([batch.color_aug[k] for k in keys], 0),
                                         training=training)
            per_frame = [tf.split(f, len(keys), axis=0) for f in stacked]
            features = {k: [level[i] for level in per_frame] for i, k in enumerate(keys)}
            disps = self.depth.decoder(features["0"], training=training)
            poses = self._predict_poses(features, self.shared_pose)
            target_features = features["0"]
        else:
            target_features = self.depth.encoder(target, training=training)
            disps = self.depth.decoder(target_features, training=training)
            poses = self._predict_poses(
                batch.color_aug,
                lambda frames: self.pose(tf.concat(frames, axis=-1), training=training)) \
                if temporal else {}
        masks = (self.mask_decoder(target_features, training=training)
                 if self.mask_decoder is not None else [])
        return NetworkOutputs(disps=list(disps), poses=poses, masks=list(masks))

    def _predict_poses(self, frames: Dict, predict) -> Dict[str, Pose]:
        """Poses of every temporal source. ``frames`` maps frame keys to the pose network's
        inputs (images, or encoder features for the shared decoder); ``predict`` takes a list
        of them in temporal order and returns (axisangle, translation) ``[B, n, 1, 3]``."""
        options, poses = self.config, {}
        if options.pose_model_input == "pairs":
            for key in options.temporal_keys:
                pair = [frames[key], frames["0"]] if frame_offset(key) < 0 else \
                    [frames["0"], frames[key]]
                axisangle, translation = predict(pair)
                poses[key] = Pose(axisangle[:, 0, 0], translation[:, 0, 0])
            return poses
        ordered = [frame_key(f) for f in options.frame_ids if frame_key(f) != STEREO]
        axisangle, translation = predict([frames[k] for k in ordered])
        for i, key in enumerate(options.temporal_keys):
            poses[key] = Pose(axisangle[:, i, 0], translation[:, i, 0])
        return poses

    def loss(self, batch: Batch, outputs: NetworkOutputs, loss_options: LossOptions,
             noise_seed: Optional[tf.Tensor] = None) -> LossOutputs:
        """The Monodepth2 loss of these outputs on this batch."""
        return compute_losses(batch, outputs.disps, outputs.poses, loss_options,
                              predictive_masks=outputs.masks or None, noise_seed=noise_seed)
