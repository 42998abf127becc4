"""Monodepth2's self-supervised loss: view synthesis, photometric error, auto-masking, smoothness.

Per scale s (disparity ``[B, H/2**s, W/2**s, 1]``), the disparity is upsampled to the input size
(or not, with ``v1_multiscale``), turned into depth, and every source frame is warped into the
target view. The photometric error ``0.85 * SSIM + 0.15 * L1`` of each warped source against the
target is reduced per pixel by a minimum over sources (or their mean), auto-masked against the
error of the unwarped sources, averaged, and an edge-aware smoothness term on the mean-normalized
disparity weighted ``disparity_smoothness / 2**s`` is added. The total is the mean over scales.
"""

from typing import Dict, Optional, Sequence

import tensorflow as tf

from monodepth_tf.data.batch import Batch
from monodepth_tf.data.frames import frame_key
from monodepth_tf.geometry.camera import backproject, project
from monodepth_tf.geometry.depth import disp_to_depth
from monodepth_tf.geometry.sampling import sample_neighbourhoods
from monodepth_tf.losses.options import LossOptions, LossOutputs, Pose
from monodepth_tf.losses.reprojection import (PerSourceScale, channel_minimum, minimum_of,
                                              static_size, source_transform)
from monodepth_tf.losses.smoothness import edge_aware_smoothness
from monodepth_tf.losses.ssim import photometric_error
from monodepth_tf.losses.upsample import upsample_bilinear


PREDICTIVE_MASK_WEIGHT = 0.2




def compute_losses(batch: Batch, disps: Sequence[tf.Tensor], poses: Dict[str, Pose],
                   options: LossOptions,
                   predictive_masks: Optional[Sequence[tf.Tensor]] = None,
                   noise_seed: Optional[tf.Tensor] = None) -> LossOutputs:
    """The whole Monodepth2 loss for one batch.

    Args:
        batch: images per frame and scale, intrinsics per scale, stereo_T.
        disps: the depth decoder's sigmoid outputs, per scale of ``options.scales``,
            ``[B, H/2**s, W/2**s, 1]``.
        poses: ``{source key: Pose}`` for every temporal source frame.
        options: which variant of the loss.
        predictive_masks: with ``predictive_mask``, the mask decoder's outputs per scale,
            ``[B, H/2**s, W/2**s, num_sources]``.
        noise_seed: ``[2]`` int seed of the auto-mask tie-breaking noise (stateless, so a
            resumed run draws what an uninterrupted one would); None uses the global generator.

    Returns:
        LossOutputs.
    """
    sources = [frame_key(f) for f in options.frame_ids[1:]]
    full_size = static_size(batch.color["0"][0])
    fixed_T = {} if options.posecnn else {
        key: source_transform(key, poses.get(key), batch, None, options) for key in sources}
    # Without v1_multiscale every scale compares full-size images: the target's SSIM
    # statistics, the prepared sources and the identity errors are computed once for all.
    per_image = PerSourceScale(batch, sources, options)

    per_scale, depths, selections = [], [], []
    samples = {key: [] for key in sources}
    warped = {key: [] for key in sources}
    for index, scale in enumerate(options.scales):
        disp = disps[index]
        source_scale = scale if options.v1_multiscale else 0
        with tf.name_scope("upsample"):
            if not options.v1_multiscale:
                disp_for_depth = upsample_bilinear(disp, full_size, options.exact)
            else:
                disp_for_depth = disp
        with tf.name_scope("backproject"):
            _, depth = disp_to_depth(disp_for_depth, options.min_depth, options.max_depth)
            depths.append(depth)
            points = backproject(depth, batch.inv_K[source_scale])
        with tf.name_scope("prepare"):
            images = per_image.at(source_scale)

        errors = []
        for key in sources:
            T = fixed_T[key] if key in fixed_T else source_transform(
                key, poses.get(key), batch, depth, options)
            with tf.name_scope("project"):
                grid = project(points, batch.K[source_scale], T)
            with tf.name_scope("sample"):
                image = sample_neighbourhoods(images.sources[key], grid, options.exact,
                                              fused=not options.exact)
            samples[key].append(tf.stack(grid, axis=-1))
            warped[key].append(image)
            with tf.name_scope("photometric"):
                errors.append(photometric_error(image, images.target, options.no_ssim,
                                                 fused=not options.exact))
        loss = 0.0
        # [B, h, w, num_sources], when a mask or the mean needs the errors side by side
        reprojection = (tf.concat(errors, axis=-1)
                        if options.predictive_mask or options.avg_reprojection else None)
        if options.predictive_mask:
            mask = predictive_masks[index]
            if not options.v1_multiscale:
                mask = upsample_bilinear(mask, full_size, options.exact)
            reprojection = reprojection * mask
            # BCE against an all-ones target, with PyTorch's log clamp at -100.
            loss += PREDICTIVE_MASK_WEIGHT * tf.reduce_mean(
                -tf.maximum(tf.math.log(mask), -100.0))
        if options.avg_reprojection:
            reprojection = tf.reduce_mean(reprojection, axis=-1, keepdims=True)

        with tf.name_scope("minimum"):
            per_pixel = (channel_minimum(reprojection) if reprojection is not None
                         else minimum_of(errors))
            if not options.disable_automasking:
                with tf.name_scope("identity"):
                    identity = images.identity_error()
                if options.automask_noise:
                    if noise_seed is None:
                        noise = tf.random.normal(tf.shape(identity))
                    else:
                        seed = tf.cast(noise_seed, tf.int64) + scale
                        noise = tf.random.stateless_normal(tf.shape(identity), seed=seed)
                    identity += noise * options.automask_noise
                # The minimum over [identity..., reprojection...]: a warped source is selected
                # only when it beats every unwarped one; ties go to the identity, as the first
                # index of the original's per-pixel minimum.
                identity = channel_minimum(identity)
                selections.append(tf.cast(per_pixel < identity, disp.dtype)[..., 0])
                per_pixel = tf.minimum(identity, per_pixel)
            loss += tf.reduce_mean(per_pixel)

        with tf.name_scope("smoothness"):
            mean_disp = tf.reduce_mean(disp, axis=[1, 2], keepdims=True)
            smoothness = edge_aware_smoothness(disp / (mean_disp + 1e-7), batch.color["0"][scale])
        loss += options.disparity_smoothness * smoothness / (2 ** scale)
        per_scale.append(loss)

    total = tf.add_n(per_scale) / len(per_scale)
    return LossOutputs(
        total=total,
        per_scale=tuple(per_scale),
        depth=tuple(depths),
        sample={key: tuple(v) for key, v in samples.items()},
        warped={key: tuple(v) for key, v in warped.items()},
        identity_selection=tuple(selections),
    )
