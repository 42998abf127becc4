"""View synthesis: the transform to each source frame, the source images prepared per scale,
and the per-pixel minimum over sources.
"""

from typing import Dict, Optional, Sequence

import tensorflow as tf

from monodepth_tf.data.batch import Batch
from monodepth_tf.data.frames import STEREO, frame_offset
from monodepth_tf.geometry.sampling import neighbourhoods
from monodepth_tf.geometry.transforms import transformation_from_parameters
from monodepth_tf.losses.options import LossOptions, Pose
from monodepth_tf.losses.ssim import photometric_error, ssim_statistics


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
    return transformation_from_parameters(pose.axisangle, translation, invert=invert,
                                                   exact=options.exact)


def static_size(image: tf.Tensor):
    """``(H, W)`` of ``[B, H, W, C]``: Python ints when known statically, else a tensor."""
    height, width = image.shape[1], image.shape[2]
    if height is not None and width is not None:
        return (int(height), int(width))
    return tf.shape(image)[1:3]


class ScaleImages:
    """The images of one source scale the loss compares, prepared once.

    Attributes:
        target: the target's :class:`SsimStatistics` (or the image itself with ``no_ssim``).
        sources: ``{source key: Neighbourhoods}`` ready for sampling.
    """

    def __init__(self, batch: Batch, sources: Sequence[str], scale: int, options: LossOptions):
        self._batch, self._keys, self._scale, self._options = batch, sources, scale, options
        target = batch.color["0"][scale]
        self.target = target if options.no_ssim else ssim_statistics(target)
        self.sources = {key: neighbourhoods(batch.color[key][scale]) for key in sources}
        self._identity = None

    def identity_error(self) -> tf.Tensor:
        """The photometric error of the unwarped sources against the target (averaged with
        ``avg_reprojection``): ``[B, h, w, num_sources]`` (or ``[B, h, w, 1]``)."""
        if self._identity is None:
            identity = tf.concat(
                [photometric_error(self._batch.color[key][self._scale], self.target,
                                   self._options.no_ssim, fused=not self._options.exact)
                 for key in self._keys], axis=-1)
            if self._options.avg_reprojection:
                identity = tf.reduce_mean(identity, axis=-1, keepdims=True)
            self._identity = identity
        return self._identity


class PerSourceScale:
    """:class:`ScaleImages` per source scale, built when first asked for."""

    def __init__(self, batch: Batch, sources: Sequence[str], options: LossOptions):
        self._args = (batch, sources, options)
        self._scales: Dict[int, ScaleImages] = {}

    def at(self, scale: int) -> ScaleImages:
        if scale not in self._scales:
            batch, sources, options = self._args
            self._scales[scale] = ScaleImages(batch, sources, scale, options)
        return self._scales[scale]


def channel_minimum(errors: tf.Tensor) -> tf.Tensor:
    """The per-pixel minimum over the channels of ``[B, H, W, N]``: ``[B, H, W, 1]``.

    Folded left to right with ``tf.minimum``, whose gradient goes to its first argument on a
    tie: the gradient reaches the first of equal errors, as the original's ``min`` (which
    returns the first index) has it; ``tf.reduce_min`` would split it. For the handful of
    channels here that is also cheaper, forward and backward, than a reduction.
    """
    return minimum_of([errors[..., k:k + 1] for k in range(errors.shape[-1])])


def minimum_of(maps: Sequence[tf.Tensor]) -> tf.Tensor:
    """The elementwise minimum of ``maps``, folded left to right as :func:`channel_minimum`
    (the gradient goes to the first of equal values): the same result as concatenating them
    and taking :func:`channel_minimum`, without the concatenation and the slices."""
    smallest = maps[0]
    for other in maps[1:]:
        smallest = tf.minimum(smallest, other)
    return smallest
