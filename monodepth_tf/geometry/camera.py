"""The pinhole camera: pixels back-projected to 3D points with depth, projected into another view.

Conventions: images and per-pixel maps are NHWC; pixel coordinates are ``(x, y)`` with pixel
``x`` at column ``x`` (the centre of the top-left pixel is ``(0, 0)``); sampling grids are those
coordinates normalized to [-1, 1] (``-1`` and ``1`` the centres of the first and last pixels);
camera frames are x right, y down, z forward; transforms are ``[B, 4, 4]`` matrices acting on
column vectors.
"""

from typing import NamedTuple, Tuple

import keras
import tensorflow as tf

from monodepth_tf.geometry.numerics import GeometryLayer, matmul_small


PROJECTION_EPS = 1e-7


def pixel_grid(height, width, dtype=tf.float32) -> Tuple[tf.Tensor, tf.Tensor]:
    """Pixel coordinates ``x``, ``y`` of an image, each ``[1, H, W]``."""
    x, y = tf.meshgrid(tf.cast(tf.range(width), dtype), tf.cast(tf.range(height), dtype))
    return x[None], y[None]


def _apply_rows(matrix: tf.Tensor, coords, rows: int):
    """``rows`` rows of ``matrix [B, r, c] @ (coords..., 1)`` as per-pixel maps ``[B, H, W]``.

    The products are summed one term at a time, left to right, in the input's precision. That
    is the order the original's batched matmul used, and reproducing it keeps the sampling grid
    identical to the original's bit for bit: a difference of one rounding here moves samples by
    ~1e-4 px, enough to flip auto-mask decisions at near-ties.
    """
    out = []
    for i in range(rows):
        acc = matrix[:, i, 0, None, None] * coords[0]
        for j in range(1, len(coords)):
            acc = acc + matrix[:, i, j, None, None] * coords[j]
        out.append(acc + matrix[:, i, len(coords), None, None])
    return out


class CameraPoints(NamedTuple):
    """3-D points in a camera frame, one per pixel: coordinate maps ``x``, ``y``, ``z``, each
    ``[B, H, W]``."""

    x: tf.Tensor
    y: tf.Tensor
    z: tf.Tensor


class Grid(NamedTuple):
    """A sampling grid as two maps ``x``, ``y`` ``[B, H, W]`` normalized to [-1, 1] (see
    :class:`Project3D`); ``tf.stack(grid, axis=-1)`` is the ``[B, H, W, 2]`` form."""

    x: tf.Tensor
    y: tf.Tensor


def backproject(depth: tf.Tensor, inv_K: tf.Tensor) -> CameraPoints:
    """``depth * inv_K[:3, :3] @ (x, y, 1)`` for every pixel of ``depth`` ``[B, H, W, 1]``;
    ``inv_K`` ``[B, 4, 4]`` (or ``[B, 3, 3]``). See :class:`BackprojectDepth`."""
    shape = tf.shape(depth)
    x, y = pixel_grid(shape[1], shape[2], depth.dtype)
    rays = _apply_rows(tf.cast(inv_K, depth.dtype), (x, y), 3)
    depth = tf.squeeze(depth, axis=-1)
    return CameraPoints(*(depth * ray for ray in rays))


def project(points: CameraPoints, K: tf.Tensor, T: tf.Tensor,
            eps: float = PROJECTION_EPS) -> Grid:
    """The sampling grid of ``points`` seen through ``K @ T`` (``[B, 4, 4]`` each), over an
    image of the points' size. See :class:`Project3D`."""
    dtype = points.x.dtype
    P = tf.cast(matmul_small(K, T), dtype)  # [B, 4, 4]
    cam = _apply_rows(P, points, 3)
    z = cam[2] + eps
    shape = tf.shape(points.x)
    x = (cam[0] / z / tf.cast(shape[2] - 1, dtype) - 0.5) * 2.0
    y = (cam[1] / z / tf.cast(shape[1] - 1, dtype) - 0.5) * 2.0
    return Grid(x, y)


@keras.saving.register_keras_serializable(package="monodepth_tf")
class BackprojectDepth(GeometryLayer):
    """Lifts every pixel to a 3-D point in the camera frame.

    Call:
        depth ``[B, H, W, 1]``, inv_K ``[B, 4, 4]`` (or ``[B, 3, 3]``).

    Returns:
        Homogeneous camera points ``[B, H, W, 4]`` = ``(depth * inv_K[:3, :3] @ (x, y, 1), 1)``.
    """

    def call(self, depth, inv_K):
        points = tf.stack(backproject(depth, inv_K), axis=-1)
        return tf.concat([points, tf.ones_like(depth)], axis=-1)


@keras.saving.register_keras_serializable(package="monodepth_tf")
class Project3D(GeometryLayer):
    """Projects camera points through ``K @ T`` into another camera's sampling grid.

    Call:
        points ``[B, H, W, 4]`` homogeneous, K ``[B, 4, 4]``, T ``[B, 4, 4]``.

    Returns:
        ``[B, H, W, 2]`` grid ``(x, y)`` normalized to [-1, 1] over the image of size H x W
        (-1 and 1 are the centres of the first and last pixels, as PyTorch's ``grid_sample``
        with ``align_corners=True``); the division by depth is guarded by ``eps = 1e-7`` as in
        the original. :func:`bilinear_sample` reads this grid.
    """

    def __init__(self, eps=PROJECTION_EPS, **kwargs):
        super().__init__(**kwargs)
        self.eps = eps

    def call(self, points, K, T):
        coords = CameraPoints(*tf.unstack(points, axis=-1)[:3])
        return tf.stack(project(coords, K, T, self.eps), axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(eps=self.eps)
        return config


def pixels_from_grid(grid: tf.Tensor, height, width) -> tf.Tensor:
    """The [-1, 1] grid convention -> pixel coordinates ``(x, y)`` (inverse of
    :func:`grid_from_pixels`)."""
    size = tf.cast(tf.stack([width - 1, height - 1]), grid.dtype)
    return (grid + 1.0) / 2.0 * size


def grid_from_pixels(pix: tf.Tensor, height, width) -> tf.Tensor:
    """Pixel coordinates ``(x, y)`` -> the [-1, 1] grid convention of :class:`Project3D`."""
    size = tf.cast(tf.stack([width - 1, height - 1]), pix.dtype)
    return (pix / size - 0.5) * 2.0
