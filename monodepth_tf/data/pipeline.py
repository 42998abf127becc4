"""The tf.data pipeline: split entries -> decoded, resized, augmented ``Batch`` es.

Per sample, as the original prepares it: the frames ``frame_ids`` names (temporal offsets on
the same camera, ``s`` the other camera at the same instant), decoded, flipped horizontally with
probability 0.5 (all frames together), resized as 8-bit images with Pillow's Lanczos
arithmetic (:mod:`monodepth_tf.data.resize`, bit for bit) to ``height`` x ``width`` and then halved
scale by scale, each scale from the previous one, then scaled to [0, 1]; intrinsics per scale
from the sample's camera (:class:`~monodepth_tf.data.layout.Camera`, the layout's
``camera(entry)``: KITTI's normalized intrinsics, or a folder dataset's own); ``stereo_T``
with the camera's baseline (0.1 for KITTI) signed by the side and the flip; colour jitter with
probability 0.5 from one draw per sample, applied after resizing to the networks' copies
(``color_aug``) only. (The original jitters every scale; the networks read scale 0 only, so
only scale 0 is jittered here.)

Randomness is stateless: every draw is a function of (seed, epoch, sample index), so a sample
comes out the same whatever the parallelism, and a resumed run sees the same data as an
uninterrupted one.
"""

import dataclasses
import functools
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import tensorflow as tf

from monodepth_tf.data.batch import Batch
from monodepth_tf.data.frames import SIDE_CAMERA, FrameId, frame_key
from monodepth_tf.data.gt_depth import lidar_depth_map
from monodepth_tf.data.kitti import FULL_HEIGHT, FULL_WIDTH
from monodepth_tf.data.layout import (KITTI_CAMERA, NORMALIZED_K, Camera, Layout,
                                      LidarLayout)
from monodepth_tf.data.resize import resize_lanczos_tf, to_float
from monodepth_tf.data.splits import SplitEntry

BRIGHTNESS = CONTRAST = SATURATION = (0.8, 1.2)
HUE = (-0.1, 0.1)


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """How samples are prepared.

    Attributes:
        height, width: the network input size.
        frame_ids: frames per sample (0 first).
        scales: how many scales the loss uses (0..3).
        augment: flip and colour jitter (training); off for validation and evaluation.
        seed: base of every random draw.
        num_parallel_calls: decoding parallelism (``tf.data.AUTOTUNE`` by default).
    """

    height: int = 192
    width: int = 640
    frame_ids: Tuple[FrameId, ...] = (0, -1, 1)
    scales: Tuple[int, ...] = (0, 1, 2, 3)
    augment: bool = True
    seed: int = 0
    num_parallel_calls: int = tf.data.AUTOTUNE


def intrinsics(height: int, width: int, scale: int,
               normalized_K: np.ndarray = NORMALIZED_K) -> np.ndarray:
    """``[4, 4]`` pixel intrinsics of one scale from normalized intrinsics (KITTI's by
    default)."""
    K = np.array(normalized_K, dtype=np.float32)
    K[0, :] *= width // 2 ** scale
    K[1, :] *= height // 2 ** scale
    return K


def sample_paths(layout: Layout, entry: SplitEntry,
                 frame_ids: Sequence[FrameId]) -> Dict[str, str]:
    """``{frame key: image path}`` of one split entry, as strings."""
    return {k: str(v) for k, v in layout.sample_paths(entry, frame_ids).items()}


def _jitter(image: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Brightness, contrast, saturation (multiplicative, around black, the grey mean and the
    pixel's grey value) then hue (a shift, in turns) of ``[..., H, W, 3]`` in [0, 1]."""
    brightness, contrast, saturation, hue = tf.unstack(factors)
    image = tf.clip_by_value(image * brightness, 0.0, 1.0)
    grey_mean = tf.reduce_mean(tf.image.rgb_to_grayscale(image), axis=[-3, -2, -1], keepdims=True)
    image = tf.clip_by_value((image - grey_mean) * contrast + grey_mean, 0.0, 1.0)
    grey = tf.image.rgb_to_grayscale(image)
    image = tf.clip_by_value((image - grey) * saturation + grey, 0.0, 1.0)
    return tf.image.adjust_hue(image, hue)


def scale_pyramid(images: tf.Tensor, height: int, width: int, scales: Sequence[int],
                  flip: Optional[tf.Tensor] = None) -> List[tf.Tensor]:
    """The original's network inputs per scale, uint8: scale ``scales[0]`` (0) resized from
    ``images`` ``[F, H, W, 3]`` (mirrored horizontally first where the scalar bool ``flip``
    is true) to ``height`` x ``width``, each further scale ``s`` from the previous one to
    ``height // 2**s`` x ``width // 2**s``, all with Pillow's Lanczos
    (:func:`monodepth_tf.data.resize.resize_lanczos_tf`)."""
    pyramid = [resize_lanczos_tf(images, height, width, mirror=flip)]
    for s in scales[1:]:
        pyramid.append(resize_lanczos_tf(pyramid[-1], height // 2 ** s, width // 2 ** s))
    return pyramid


def sample_cameras(layout: Layout,
                   entries: Sequence[SplitEntry]) -> Tuple[List[Camera], np.ndarray]:
    """The distinct cameras of ``entries`` (the layout's ``camera(entry)``) and each entry's
    index among them ``[N]`` int32."""
    cameras: List[Camera] = []
    index: Dict[bytes, int] = {}
    rows = []
    for entry in entries:
        camera = layout.camera(entry)
        key = (np.asarray(camera.normalized_K, np.float32).tobytes()
               + np.float32([camera.flip, camera.baseline]).tobytes())
        if key not in index:
            index[key] = len(cameras)
            cameras.append(camera)
        rows.append(index[key])
    return cameras or [KITTI_CAMERA], np.array(rows, np.int32)


class SampleLoader:
    """Turns ``(paths, side sign, seed, camera index)`` into one unbatched :class:`Batch` (a
    tf.data map); the camera index picks one of ``cameras`` (KITTI's by default)."""

    def __init__(self, options: PipelineOptions, cameras: Sequence[Camera] = (KITTI_CAMERA,)):
        self.options = options
        self.keys = [frame_key(f) for f in options.frame_ids]
        # per scale: [cameras, 4, 4] tables, gathered per sample
        Ks = [[intrinsics(options.height, options.width, s, c.normalized_K) for c in cameras]
              for s in options.scales]
        self.K = [tf.constant(np.stack(k)) for k in Ks]
        self.inv_K = [tf.constant(np.stack([np.linalg.pinv(m) for m in k])) for k in Ks]
        self.flip_allowed = tf.constant([bool(c.flip) for c in cameras])
        self.baseline = tf.constant([c.baseline for c in cameras], tf.float32)

    def draws(self, seed: tf.Tensor):
        """One sample's random choices: flip, jitter on/off, jitter factors [4]."""
        u = tf.random.stateless_uniform([6], seed=seed)
        lows = tf.constant([BRIGHTNESS[0], CONTRAST[0], SATURATION[0], HUE[0]])
        highs = tf.constant([BRIGHTNESS[1], CONTRAST[1], SATURATION[1], HUE[1]])
        factors = lows + (highs - lows) * u[2:]
        if not self.options.augment:
            return tf.constant(False), tf.constant(False), factors
        return u[0] > 0.5, u[1] > 0.5, factors

    def __call__(self, paths: Dict[str, tf.Tensor], side_sign: tf.Tensor,
                 seed: tf.Tensor, camera: tf.Tensor = 0) -> Batch:
        o = self.options
        flip, jitter, factors = self.draws(seed)
        flip = tf.logical_and(flip, tf.gather(self.flip_allowed, camera))
        color, color_aug = {}, {}
        # all frames of a sample decode and resize together: one op per stage, not per frame
        full = tf.stack([tf.io.decode_image(tf.io.read_file(paths[k]), channels=3,
                                            dtype=tf.uint8, expand_animations=False)
                         for k in self.keys])
        # the flip happens in the first resize, which reads the columns in reverse order
        per_scale = [to_float(images) for images in scale_pyramid(full, o.height, o.width,
                                                                   o.scales, flip)]
        augmented = tf.cond(jitter, lambda: _jitter(per_scale[0], factors), lambda: per_scale[0])
        for i, key in enumerate(self.keys):
            color[key] = tuple(images[i] for images in per_scale)
            color_aug[key] = augmented[i]
        flip_sign = tf.where(flip, -1.0, 1.0)
        stereo_T = tf.tensor_scatter_nd_update(
            tf.eye(4), [[0, 3]], [side_sign * flip_sign * tf.gather(self.baseline, camera)])
        return Batch(color=color, color_aug=color_aug,
                     K=tuple(tf.gather(k, camera) for k in self.K),
                     inv_K=tuple(tf.gather(k, camera) for k in self.inv_K), stereo_T=stereo_T)


def without_autotune_model(data: tf.data.Dataset) -> tf.data.Dataset:
    """``data`` without tf.data's autotuning model. That model runs in a thread of the
    iterator, which sleeps between optimizations for a period that doubles up to a minute;
    destroying the iterator waits for it, so a training run stood idle for 15-120 s at some
    epoch ends (seen with py-spy and gdb: ~RootDataset::Iterator joining the thread in
    Model::OptimizeLoop). Without it, ``AUTOTUNE`` takes tf.data's fixed defaults; the demo's
    299 steps took 155 s against 174 s with the model on (Intel Xeon, 2 cores)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.with_options(options)


def make_dataset(layout: Layout, entries: List[SplitEntry], options: PipelineOptions,
                 batch_size: int, epoch: int = 0, shuffle: bool = True,
                 input_context: Optional[tf.distribute.InputContext] = None,
                 drop_remainder: bool = True, epochs: int = 1) -> tf.data.Dataset:
    """Batches of :class:`Batch` for a list of split entries: one epoch, or ``epochs``
    consecutive ones.

    Args:
        layout: where the images are.
        entries: the split's samples.
        options: how samples are prepared.
        batch_size: per-replica batch size when ``input_context`` is given, else global.
        epoch: shuffling and augmentation of epoch ``epoch`` (a resumed run passes its epoch).
        shuffle: shuffle the samples (seeded by ``options.seed`` and the epoch).
        input_context: from ``strategy.distribute_datasets_from_function``: each input
            pipeline keeps its share of the samples.
        drop_remainder: drop a last incomplete batch (of each epoch).
        epochs: epochs ``epoch``, ``epoch + 1``, ... in one dataset, each as it would be alone
            (its own order and draws, its remainder dropped), so that a training run reads
            them all through one iterator.
    """
    if epochs < 1 or (epochs > 1 and not drop_remainder):
        raise ValueError(f"epochs={epochs}: one or more, and more than one only with "
                         "drop_remainder (a batch may not span two epochs)")
    paths = [sample_paths(layout, e, options.frame_ids) for e in entries]
    columns = {k: np.array([p[k] for p in paths]) for k in paths[0]} if paths else {}
    side_sign = np.array([-1.0 if e.side == "l" else 1.0 for e in entries], np.float32)
    cameras, camera_index = sample_cameras(layout, entries)
    loader = SampleLoader(options, cameras)

    parts = []
    for each in range(epoch, epoch + epochs):
        order = np.arange(len(entries))
        if shuffle:
            order = np.random.default_rng([options.seed, each]).permutation(order)
        # per-sample seed: (seed and epoch, sample index), for stateless random draws
        seeds = np.stack([np.full(len(order), options.seed * 100_003 + each), order], axis=1)
        part = tf.data.Dataset.from_tensor_slices((
            {k: v[order] for k, v in columns.items()}, side_sign[order],
            seeds.astype(np.int64), camera_index[order]))
        if input_context is not None:
            part = part.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if drop_remainder:  # whole batches only, so that no batch spans two epochs
            part = part.take(int(part.cardinality()) // batch_size * batch_size)
        parts.append(part)
    data = functools.reduce(tf.data.Dataset.concatenate, parts)
    # traced as written, like the training step (see training/step.py)
    data = data.map(tf.autograph.experimental.do_not_convert(loader),
                    num_parallel_calls=options.num_parallel_calls, deterministic=True)
    data = data.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    return without_autotune_model(data)


def lidar_ground_truth(layout: LidarLayout, entry: SplitEntry) -> np.ndarray:
    """A sample's LiDAR depth ``[375, 1242]`` float32, nearest-resized to KITTI's full size
    as the original does for validation (KITTI's dates differ by a few pixels in size). Its
    values are the camera depth, as the original's validation loads them (not the LiDAR
    forward coordinate of the exported Eigen ground truth)."""
    depth = lidar_depth_map(layout.calib_dir(entry.folder),
                            layout.velodyne_path(entry.folder, entry.frame_index),
                            SIDE_CAMERA[entry.side], velodyne_depth=False).astype(np.float32)
    if depth.shape != (FULL_HEIGHT, FULL_WIDTH):
        depth = cv2.resize(depth, (FULL_WIDTH, FULL_HEIGHT), interpolation=cv2.INTER_NEAREST)
    return depth


def make_validation_dataset(layout: LidarLayout, entries: List[SplitEntry],
                            options: PipelineOptions, batch_size: int) -> tf.data.Dataset:
    """Batches of ``(Batch, depth_gt [B, 375, 1242])``: unaugmented samples in list order with
    their LiDAR ground truth."""
    options = dataclasses.replace(options, augment=False)
    images = make_dataset(layout, entries, options, 1, shuffle=False).unbatch()

    def load(index):
        return lidar_ground_truth(layout, entries[int(index)])

    depths = tf.data.Dataset.range(len(entries)).map(
        lambda i: tf.ensure_shape(tf.numpy_function(load, [i], tf.float32),
                                  [FULL_HEIGHT, FULL_WIDTH]),
        num_parallel_calls=options.num_parallel_calls, deterministic=True)
    return without_autotune_model(
        tf.data.Dataset.zip((images, depths)).batch(batch_size).prefetch(tf.data.AUTOTUNE))
