"""Monodepth2's self-supervised loss: view synthesis, photometric error, auto-masking, smoothness.

Per scale s (disparity ``[B, H/2**s, W/2**s, 1]``), the disparity is upsampled to the input size
(or not, with ``v1_multiscale``), turned into depth, and every source frame is warped into the
target view. The photometric error ``0.85 * SSIM + 0.15 * L1`` of each warped source against the
target is reduced per pixel by a minimum over sources (or their mean), auto-masked against the
error of the unwarped sources, averaged, and an edge-aware smoothness term on the mean-normalized
disparity weighted ``disparity_smoothness / 2**s`` is added. The total is the mean over scales.
"""

import dataclasses
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from monodepth_tf import geometry
from monodepth_tf.batch import STEREO, Batch, FrameId, frame_key, frame_offset

SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2
SSIM_WEIGHT = 0.85
PREDICTIVE_MASK_WEIGHT = 0.2
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
    runs at 1/32-1/64 of float32's speed. ``exact=True`` reproduces the original's roundings --
    the rotation angle, the disparity upsampling and the sampler's corners summed with fused
    multiply-adds, emulated in float64 (see :func:`geometry.fused_multiply_add`) -- so that
    depths, sampling grids, warped images and auto-masks equal the original's bit for bit
    (tests/test_losses.py). On the reference fixtures the float32 path moves sampling grids by
    at most 1e-4 pixels, flips at most 0.06% of the auto-mask decisions (near-ties) and changes
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


@tf.custom_gradient
def _mean3x3(padded: tf.Tensor) -> tf.Tensor:
    """The 3x3 means of ``[N, H + 2, W + 2, C]`` (a 'valid' average pool): ``[N, H, W, C]``.

    The gradient is the transposed box filter, itself a 3x3 mean of the zero-padded incoming
    gradient: much cheaper on the CPU than TensorFlow's pooling gradient for few channels.
    """
    return tf.nn.avg_pool2d(padded, 3, 1, "VALID"), _mean3x3_transposed


def _mean3x3_transposed(upstream: tf.Tensor) -> tf.Tensor:
    """The transpose of :func:`_mean3x3`: ``[N, H, W, C]`` -> ``[N, H + 2, W + 2, C]``, the 3x3
    mean of the zero-padded map."""
    zero_padded = tf.pad(upstream, [[0, 0], [2, 2], [2, 2], [0, 0]])
    return tf.nn.avg_pool2d(zero_padded, 3, 1, "VALID")


def _local_means(maps: Sequence[tf.Tensor]) -> List[tf.Tensor]:
    """3x3 means with reflection padding of each map ``[B, H, W, C]`` (each pooled on its own:
    stacking them into one batch first costs two more copies than it saves)."""
    return [_mean3x3(tf.pad(m, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")) for m in maps]


class SsimStatistics(NamedTuple):
    """The local statistics of an image that every SSIM against it reuses.

    Attributes:
        image: ``y`` ``[B, H, W, C]``.
        mean: its 3x3 local mean ``mu_y``; ``mean_squared``: ``mu_y * mu_y``; ``variance``:
            the local mean of ``y * y`` minus ``mu_y * mu_y``; all ``[B, H, W, C]``.
    """

    image: tf.Tensor
    mean: tf.Tensor
    mean_squared: tf.Tensor
    variance: tf.Tensor


def ssim_statistics(image: tf.Tensor) -> SsimStatistics:
    """:class:`SsimStatistics` of ``image`` ``[B, H, W, C]``."""
    mean, mean_of_square = _local_means([image, image * image])
    mean_squared = mean * mean
    return SsimStatistics(image, mean, mean_squared, mean_of_square - mean_squared)


def _local_means_adjoint(maps: Sequence[tf.Tensor]) -> List[tf.Tensor]:
    """The transpose of :func:`_local_means` applied to each ``[B, H, W, C]`` map: the gradient
    of the reflection-padded 3x3 means with respect to the maps they were taken of."""
    return [tf.raw_ops.MirrorPadGrad(input=_mean3x3_transposed(m),
                                     paddings=[[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
            for m in maps]


@tf.custom_gradient
def _ssim_against(x, y, mu_y, mu_y_squared, sigma_y):
    """``(1 - SSIM(x, y)) / 2`` clipped to [0, 1], given y's statistics (see
    :class:`SsimStatistics`); all ``[B, H, W, C]``.

    The forward pass evaluates the formula in the original's order, so that every rounding is
    the same (doubling is exact: ``2 * (mu_x * mu_y)`` is bitwise ``(2 * mu_x) * mu_y``). The
    gradient is written out by hand: with ``q = A S / (P Q)``, ``A = 2 mu_x mu_y + C1``,
    ``S = 2 sigma_xy + C2``, ``P = mu_x^2 + mu_y^2 + C1``, ``Q = sigma_x + sigma_y + C2``,
    ``dq/dA = q/A``, ``dq/dS = q/S``, ``dq/dP = -q/P``, ``dq/dQ = -q/Q``, and the 3x3 means are
    transposed once for the three maps they were taken of: fewer operations than TensorFlow
    derives from the forward pass, on the loss's largest tensors.
    """
    mu_x, e_xx, e_xy = _local_means([x, x * x, x * y])
    mu_x_squared, mu_xy = mu_x * mu_x, mu_x * mu_y
    sigma_x = e_xx - mu_x_squared
    sigma_xy = e_xy - mu_xy
    a, s = 2.0 * mu_xy + SSIM_C1, 2.0 * sigma_xy + SSIM_C2
    p, q = mu_x_squared + mu_y_squared + SSIM_C1, sigma_x + sigma_y + SSIM_C2
    ratio = (a * s) / (p * q)
    unclipped = (1.0 - ratio) / 2.0
    dissimilarity = tf.clip_by_value(unclipped, 0.0, 1.0)

    def gradient(upstream):
        # The clip passes the gradient where it left the value unchanged (bounds included).
        g_ratio = tf.where(tf.equal(dissimilarity, unclipped), upstream * -0.5, 0.0)
        g_q_ratio = g_ratio * ratio  # dq/dA = q/A, ...: each term is this over one factor
        g_a, g_s = g_q_ratio / a, g_q_ratio / s
        g_p, g_q = -g_q_ratio / p, -g_q_ratio / q
        g_mu_x = 2.0 * (mu_y * (g_a - g_s) + mu_x * (g_p - g_q))
        g_mu_y = 2.0 * mu_x * (g_a - g_s)
        g_e_xy = 2.0 * g_s
        t_mu_x, t_e_xx, t_e_xy = _local_means_adjoint([g_mu_x, g_q, g_e_xy])
        return (t_mu_x + 2.0 * x * t_e_xx + y * t_e_xy, x * t_e_xy, g_mu_y, g_p, g_q)

    return dissimilarity, gradient


def ssim_dissimilarity(x: tf.Tensor, y) -> tf.Tensor:
    """Per-pixel ``(1 - SSIM) / 2`` over 3x3 windows with reflection padding, in [0, 1].

    Args:
        x: ``[B, H, W, C]``.
        y: ``[B, H, W, C]``, or its :class:`SsimStatistics` when several ``x`` are compared
            with the same ``y``.

    Returns:
        ``[B, H, W, C]``.
    """
    if not isinstance(y, SsimStatistics):
        y = ssim_statistics(y)
    return _ssim_against(x, y.image, y.mean, y.mean_squared, y.variance)


@keras.saving.register_keras_serializable(package="monodepth_tf")
class SSIM(geometry.GeometryLayer):
    """Layer form of :func:`ssim_dissimilarity`: ``(x, y) [B, H, W, C]`` -> ``[B, H, W, C]``."""

    def call(self, x, y):
        return ssim_dissimilarity(x, y)


def photometric_error(pred: tf.Tensor, target, no_ssim: bool = False) -> tf.Tensor:
    """``0.85 * SSIM + 0.15 * L1`` (or L1 alone), averaged over channels: ``[B, H, W, 1]``.

    ``pred`` is ``[B, H, W, C]``; ``target`` the same, or its :class:`SsimStatistics`.
    """
    statistics = target if isinstance(target, SsimStatistics) else None
    target = statistics.image if statistics is not None else target
    l1 = tf.reduce_mean(tf.abs(target - pred), axis=-1, keepdims=True)
    if no_ssim:
        return l1
    ssim = tf.reduce_mean(ssim_dissimilarity(pred, statistics or target), axis=-1,
                          keepdims=True)
    return SSIM_WEIGHT * ssim + (1.0 - SSIM_WEIGHT) * l1


def edge_aware_smoothness(disp: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """Mean absolute disparity gradients, damped by ``exp(-|image gradient|)``: a scalar.

    Differentiable with respect to ``disp`` (the image is data: no gradient reaches it).

    Args:
        disp: ``[B, H, W, 1]``; image: ``[B, H, W, 3]``.
    """
    image_dx = tf.reduce_mean(tf.abs(image[:, :, :-1] - image[:, :, 1:]), -1, keepdims=True)
    image_dy = tf.reduce_mean(tf.abs(image[:, :-1] - image[:, 1:]), -1, keepdims=True)
    return _damped_variation(disp, tf.stop_gradient(tf.exp(-image_dx)),
                             tf.stop_gradient(tf.exp(-image_dy)))


@tf.custom_gradient
def _damped_variation(disp, weight_x, weight_y):
    """``mean(|d disp/dx| * weight_x) + mean(|d disp/dy| * weight_y)`` with forward differences;
    ``disp`` ``[B, H, W, 1]``, the weights ``[B, H, W - 1, 1]`` and ``[B, H - 1, W, 1]``.

    The gradient is written out: each difference's ``sign * weight / count`` goes to its first
    pixel and, negated, to its second; TensorFlow's own pads a zero map per slice instead.
    """
    dx = disp[:, :, :-1] - disp[:, :, 1:]
    dy = disp[:, :-1] - disp[:, 1:]
    total = tf.reduce_mean(tf.abs(dx) * weight_x) + tf.reduce_mean(tf.abs(dy) * weight_y)

    def gradient(upstream):
        count_x, count_y = tf.cast(tf.size(dx), disp.dtype), tf.cast(tf.size(dy), disp.dtype)
        per_x = tf.sign(dx) * weight_x * (upstream / count_x)
        per_y = tf.sign(dy) * weight_y * (upstream / count_y)
        grad = (tf.pad(per_x, [[0, 0], [0, 0], [0, 1], [0, 0]])
                - tf.pad(per_x, [[0, 0], [0, 0], [1, 0], [0, 0]])
                + tf.pad(per_y, [[0, 0], [0, 1], [0, 0], [0, 0]])
                - tf.pad(per_y, [[0, 0], [1, 0], [0, 0], [0, 0]]))
        return (grad, tf.abs(dx) * (upstream / count_x), tf.abs(dy) * (upstream / count_y))

    return total, gradient


def _linear_taps(in_size, out_size):
    """Source indices and weights of align_corners=False linear interpolation along one axis:
    ``(i0, i1, w0, w1)``, each ``[out_size]``, computed in float32 as PyTorch does."""
    scale = tf.cast(in_size, tf.float32) / tf.cast(out_size, tf.float32)
    src = tf.maximum(scale * (tf.cast(tf.range(out_size), tf.float32) + 0.5) - 0.5, 0.0)
    i0 = tf.minimum(tf.cast(tf.floor(src), tf.int32), in_size - 1)
    i1 = tf.minimum(i0 + 1, in_size - 1)
    w1 = tf.clip_by_value(src - tf.cast(i0, tf.float32), 0.0, 1.0)
    return i0, i1, 1.0 - w1, w1


def upsample_bilinear(x: tf.Tensor, size, exact: bool = True) -> tf.Tensor:
    """Bilinear resize with half-pixel centres (PyTorch's ``align_corners=False``).

    ``[B, h, w, C] -> [B, H, W, C]``. With ``exact``, evaluated as the original's CPU kernel does
    (width taps then height taps, each a fused multiply-add), so disparities upsampled for the
    loss equal the original's bit for bit; ``tf.image.resize`` differs in the last bit, which is
    enough to flip auto-mask decisions at near-ties. Without ``exact``, the same taps in plain
    float arithmetic. A resize to the input's own (static) size returns the input, which is
    what the taps (weights 1 and 0) compute.
    """
    if (isinstance(size[0], int) and isinstance(size[1], int)
            and tuple(x.shape[1:3]) == (size[0], size[1])):
        return x
    shape = tf.shape(x)
    taps_h = _linear_taps(shape[1], size[0])
    taps_w = _linear_taps(shape[2], size[1])

    @tf.custom_gradient
    def resize(x):
        hi0, hi1, hw0, hw1 = taps_h
        wi0, wi1, ww0, ww1 = taps_w
        ww0, ww1 = ww0[None, None, :, None], ww1[None, None, :, None]
        hw0, hw1 = hw0[None, :, None, None], hw1[None, :, None, None]

        # Width taps on every input row first (each output row takes two of these rows, so
        # the values are the kernel's own), then the height taps.
        left, right = tf.gather(x, wi0, axis=2), tf.gather(x, wi1, axis=2)
        wide = geometry.fused_multiply_add(left, tf.cast(ww0, x.dtype),
                                           right * tf.cast(ww1, x.dtype), exact)  # [B, h, W, C]
        top, bottom = tf.gather(wide, hi0, axis=1), tf.gather(wide, hi1, axis=1)
        out = geometry.fused_multiply_add(top, tf.cast(hw0, x.dtype),
                                          bottom * tf.cast(hw1, x.dtype), exact)

        def gradient(upstream):
            # The resize is out = R_h x R_w^T per image and channel, so the gradient is
            # R_h^T upstream R_w, two small matrix products with the dense tap matrices.
            rows = _tap_matrix(taps_h, shape[1], x.dtype)  # [H, h]
            cols = _tap_matrix(taps_w, shape[2], x.dtype)  # [W, w]
            return tf.einsum("Hh,bHWc,Ww->bhwc", rows, upstream, cols)

        return out, gradient

    return resize(x)


def _tap_matrix(taps, in_size, dtype) -> tf.Tensor:
    """The ``[out_size, in_size]`` matrix of linear interpolation taps ``(i0, i1, w0, w1)``."""
    i0, i1, w0, w1 = taps
    return (tf.one_hot(i0, in_size, dtype=dtype) * tf.cast(w0, dtype)[:, None]
            + tf.one_hot(i1, in_size, dtype=dtype) * tf.cast(w1, dtype)[:, None])


def source_transform(key: str, pose: Optional[Pose], batch: Batch, depth: Optional[tf.Tensor],
                     options: LossOptions) -> tf.Tensor:
    """``[B, 4, 4]`` transform from the target camera to source ``key``.

    The stereo frame uses ``batch.stereo_T``; temporal frames use the pose network's output,
    inverted for frames before the target. With PoseCNN the translation is multiplied by the
    mean inverse depth of ``depth`` ``[B, H, W, 1]``, as the original does.
    """
    if key == STEREO:
        return batch.stereo_T
    if pose is None:
        raise ValueError(f"no pose was predicted for source frame {key}")
    translation = pose.translation
    invert = frame_offset(key) < 0 and options.pose_model_input == "pairs"
    if options.posecnn:
        translation = translation * tf.reduce_mean(1.0 / depth, axis=[1, 2])
        invert = frame_offset(key) < 0
    return geometry.transformation_from_parameters(pose.axisangle, translation, invert=invert,
                                                   exact=options.exact)


def _static_size(image: tf.Tensor):
    """``(H, W)`` of ``[B, H, W, C]``: Python ints when known statically, else a tensor."""
    height, width = image.shape[1], image.shape[2]
    if height is not None and width is not None:
        return (int(height), int(width))
    return tf.shape(image)[1:3]


class _ScaleImages:
    """The images of one source scale the loss compares, prepared once.

    Attributes:
        target: the target's :class:`SsimStatistics` (or the image itself with ``no_ssim``).
        sources: ``{source key: geometry.Neighbourhoods}`` ready for sampling.
    """

    def __init__(self, batch: Batch, sources: Sequence[str], scale: int, options: LossOptions):
        self._batch, self._keys, self._scale, self._options = batch, sources, scale, options
        target = batch.color["0"][scale]
        self.target = target if options.no_ssim else ssim_statistics(target)
        self.sources = {key: geometry.neighbourhoods(batch.color[key][scale]) for key in sources}
        self._identity = None

    def identity_error(self) -> tf.Tensor:
        """The photometric error of the unwarped sources against the target (averaged with
        ``avg_reprojection``): ``[B, h, w, num_sources]`` (or ``[B, h, w, 1]``)."""
        if self._identity is None:
            identity = tf.concat(
                [photometric_error(self._batch.color[key][self._scale], self.target,
                                   self._options.no_ssim) for key in self._keys], axis=-1)
            if self._options.avg_reprojection:
                identity = tf.reduce_mean(identity, axis=-1, keepdims=True)
            self._identity = identity
        return self._identity


class _PerSourceScale:
    """:class:`_ScaleImages` per source scale, built when first asked for."""

    def __init__(self, batch: Batch, sources: Sequence[str], options: LossOptions):
        self._args = (batch, sources, options)
        self._scales: Dict[int, _ScaleImages] = {}

    def at(self, scale: int) -> _ScaleImages:
        if scale not in self._scales:
            batch, sources, options = self._args
            self._scales[scale] = _ScaleImages(batch, sources, scale, options)
        return self._scales[scale]


def _channel_minimum(errors: tf.Tensor) -> tf.Tensor:
    """The per-pixel minimum over the channels of ``[B, H, W, N]``: ``[B, H, W, 1]``.

    Folded left to right with ``tf.minimum``, whose gradient goes to its first argument on a
    tie: the gradient reaches the first of equal errors, as the original's ``min`` (which
    returns the first index) has it; ``tf.reduce_min`` would split it. For the handful of
    channels here that is also cheaper, forward and backward, than a reduction.
    """
    smallest = errors[..., :1]
    for k in range(1, errors.shape[-1]):
        smallest = tf.minimum(smallest, errors[..., k:k + 1])
    return smallest


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
    full_size = _static_size(batch.color["0"][0])
    fixed_T = {} if options.posecnn else {
        key: source_transform(key, poses.get(key), batch, None, options) for key in sources}
    # Without v1_multiscale every scale compares full-size images: the target's SSIM
    # statistics, the prepared sources and the identity errors are computed once for all.
    per_image = _PerSourceScale(batch, sources, options)

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
            _, depth = geometry.disp_to_depth(disp_for_depth, options.min_depth, options.max_depth)
            depths.append(depth)
            points = geometry.backproject(depth, batch.inv_K[source_scale])
        with tf.name_scope("prepare"):
            images = per_image.at(source_scale)

        errors = []
        for key in sources:
            T = fixed_T[key] if key in fixed_T else source_transform(
                key, poses.get(key), batch, depth, options)
            with tf.name_scope("project"):
                grid = geometry.project(points, batch.K[source_scale], T)
            with tf.name_scope("sample"):
                image = geometry.sample_neighbourhoods(images.sources[key], grid, options.exact)
            samples[key].append(tf.stack(grid, axis=-1))
            warped[key].append(image)
            with tf.name_scope("photometric"):
                errors.append(photometric_error(image, images.target, options.no_ssim))
        reprojection = tf.concat(errors, axis=-1)  # [B, h, w, num_sources]

        loss = 0.0
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
            per_pixel = _channel_minimum(reprojection)
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
                identity = _channel_minimum(identity)
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
