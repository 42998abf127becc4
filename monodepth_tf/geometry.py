"""Camera geometry: disparity to depth, rigid transforms, back-projection, projection, sampling.

Conventions: images and per-pixel maps are NHWC; pixel coordinates are ``(x, y)`` with pixel
``x`` at column ``x`` (the centre of the top-left pixel is ``(0, 0)``); sampling grids are those
coordinates normalized to [-1, 1] (``-1`` and ``1`` the centres of the first and last pixels);
camera frames are x right, y down, z forward; transforms are ``[B, 4, 4]`` matrices acting on
column vectors.
"""

from typing import NamedTuple, Tuple

import keras
import tensorflow as tf

PROJECTION_EPS = 1e-7


class GeometryLayer(keras.layers.Layer):
    """Base of the geometry layers: they compute in their inputs' dtype (no autocasting), so
    they run in float64 for gradient checks and stay float32 under mixed precision."""

    def __init__(self, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
AXIS_ANGLE_EPS = 1e-7


def disp_to_depth(disp: tf.Tensor, min_depth: float, max_depth: float) -> Tuple[tf.Tensor, tf.Tensor]:
    """Maps the network's sigmoid output to a disparity in [1/max_depth, 1/min_depth].

    Returns:
        ``(scaled_disp, depth)`` with ``depth = 1 / scaled_disp``, shapes as ``disp``.
    """
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, reciprocal(scaled_disp)


def reciprocal(x: tf.Tensor) -> tf.Tensor:
    """``1 / x``, correctly rounded in graphs too (``x`` nonzero; a zero gives 0, not inf).

    Inside a ``tf.function`` grappler's constant folding (on by default; the Trainer turns it
    off, see ``training.keep_graph_arithmetic``) turns ``1.0 / x`` into a Reciprocal op, which
    TensorFlow's CPU kernel evaluates with an approximation: a quarter of float32 results come
    out an ulp away from the division the original (and eager TensorFlow) computes. A division
    grappler leaves alone keeps the depths of prediction and evaluation graphs exact too.
    """
    return tf.math.divide_no_nan(tf.ones_like(x), x)


def matmul_small(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``[B, n, k] @ [B, k, m]`` for tiny matrices, summing the k products left to right.

    The original's batched matmul of 4x4 matrices sums in this order without fused
    multiply-adds; doing the same keeps transforms and sampling grids bitwise equal to its own.
    """
    out = a[:, :, 0:1] * b[:, 0:1, :]
    for k in range(1, a.shape[2]):
        out = out + a[:, :, k:k + 1] * b[:, k:k + 1, :]
    return out


def rotation_from_axisangle(axisangle: tf.Tensor, exact: bool = True) -> tf.Tensor:
    """Rodrigues' formula: ``[B, 3]`` axis-angle vectors -> ``[B, 4, 4]`` rotations.

    With ``exact`` the angle (the vector's length) sums its squares with fused multiply-adds,
    which reproduces the original's angles: plain float32 sums put one of the reference poses'
    angles an ulp off, which moved 340 of its 122880 sampling-grid values.
    """
    angle = _vector_length(axisangle, exact)  # [B, 1]
    axis = axisangle / (angle + AXIS_ANGLE_EPS)
    x, y, z = tf.unstack(axis, axis=-1)
    angle = angle[:, 0]
    c, s = tf.cos(angle), tf.sin(angle)
    t = 1.0 - c
    zero, one = tf.zeros_like(c), tf.ones_like(c)
    rows = [
        [x * x * t + c, x * y * t - z * s, x * z * t + y * s, zero],
        [x * y * t + z * s, y * y * t + c, y * z * t - x * s, zero],
        [x * z * t - y * s, y * z * t + x * s, z * z * t + c, zero],
        [zero, zero, zero, one],
    ]
    return tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2)


def _vector_length(vectors: tf.Tensor, exact: bool) -> tf.Tensor:
    """``[B, n]`` -> ``[B, 1]`` Euclidean lengths: the squares summed left to right (with
    ``exact``, each step a :func:`fused_multiply_add`), then the square root."""
    total = vectors[:, :1] * vectors[:, :1]
    for k in range(1, vectors.shape[-1]):
        total = fused_multiply_add(vectors[:, k:k + 1], vectors[:, k:k + 1], total, exact)
    return tf.sqrt(total)


def translation_matrix(translation: tf.Tensor) -> tf.Tensor:
    """``[B, 3]`` translations -> ``[B, 4, 4]`` homogeneous translation matrices."""
    batch = tf.shape(translation)[0]
    eye = tf.eye(4, batch_shape=[batch], dtype=translation.dtype)
    column = tf.concat([translation, tf.zeros_like(translation[:, :1])], axis=-1)  # [B, 4]
    return eye + tf.pad(column[:, :, None], [[0, 0], [0, 0], [3, 0]])


def transformation_from_parameters(axisangle: tf.Tensor, translation: tf.Tensor,
                                   invert: bool = False, exact: bool = True) -> tf.Tensor:
    """The pose network's output as a 4x4 transform.

    Args:
        axisangle, translation: ``[B, 3]`` (or ``[B, 1, 3]``).
        invert: return the inverse motion, ``R^T (x - t)``, as the original does for frames
            before the target.
        exact: the rotation angle as the original rounds it (see
            :func:`rotation_from_axisangle`), else in plain float32.

    Returns:
        ``[B, 4, 4]``: ``T(t) R`` or, inverted, ``R^T T(-t)``.
    """
    axisangle = tf.reshape(axisangle, [-1, 3])
    translation = tf.reshape(translation, [-1, 3])
    rotation = rotation_from_axisangle(axisangle, exact)
    if invert:
        return matmul_small(tf.linalg.matrix_transpose(rotation), translation_matrix(-translation))
    return matmul_small(translation_matrix(translation), rotation)


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


def fused_multiply_add(a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, exact: bool = True) -> tf.Tensor:
    """``a * b + c``; with ``exact``, rounded once, as a hardware FMA does (evaluated in float64
    for float32).

    The original's CPU kernels (grid sampling, bilinear upsampling) are compiled with fused
    multiply-adds; evaluating the same chain of FMAs keeps our results equal to theirs bit for
    bit. That matters: the SSIM term subtracts nearly equal numbers, so a one-ulp difference in a
    warped pixel can flip an auto-mask decision. Without ``exact`` (and for float16/bfloat16 under
    mixed precision, or float64) it is plain arithmetic, about three times cheaper in TensorFlow's
    op-by-op execution, and within an ulp of the fused result.
    """
    if not exact or a.dtype != tf.float32:
        return a * b + c
    wide = lambda t: tf.cast(t, tf.float64)  # noqa: E731
    return tf.cast(wide(a) * wide(b) + wide(c), tf.float32)


class Neighbourhoods(NamedTuple):
    """An image prepared for :func:`sample_neighbourhoods`: each pixel with its right, lower and
    lower-right neighbours (edge pixels repeat themselves), so that one gather fetches all
    four corners of a bilinear sample.

    Attributes:
        values: ``[B, Hs * Ws, 4, C]``, corners in the order (x, y), (x+1, y), (x, y+1),
            (x+1, y+1) of the source pixel ``y * Ws + x``.
        height, width: ``Hs``, ``Ws`` (scalar tensors).
    """

    values: tf.Tensor
    height: tf.Tensor
    width: tf.Tensor


def neighbourhoods(image: tf.Tensor) -> Neighbourhoods:
    """Prepares ``image`` ``[B, Hs, Ws, C]`` for sampling (reusable for several grids)."""
    shape = tf.shape(image)
    right = tf.concat([image[:, :, 1:], image[:, :, -1:]], axis=2)
    row = tf.stack([image, right], axis=3)  # [B, Hs, Ws, 2, C]
    below = tf.concat([row[:, 1:], row[:, -1:]], axis=1)
    values = tf.concat([row, below], axis=3)  # [B, Hs, Ws, 4, C]
    return Neighbourhoods(tf.reshape(values, [shape[0], -1, 4, shape[3]]), shape[1], shape[2])


def sample_neighbourhoods(source: Neighbourhoods, grid, exact: bool = True) -> tf.Tensor:
    """:func:`bilinear_sample` of an image prepared by :func:`neighbourhoods`.

    Args:
        source: the prepared ``[B, Hs, Ws, C]`` image.
        grid: ``[B, H, W, 2]`` normalized ``(x, y)``, or a :class:`Grid`.
        exact: sum the four corners with fused multiply-adds as the original's kernel does (see
            :func:`fused_multiply_add`); otherwise in plain float arithmetic.

    Returns:
        ``[B, H, W, C]``.
    """
    values = source.values
    dtype = values.dtype
    last_x, last_y = tf.cast(source.width - 1, dtype), tf.cast(source.height - 1, dtype)
    if not isinstance(grid, Grid):
        grid = Grid(*tf.unstack(grid, axis=-1))
    x = tf.clip_by_value((tf.cast(grid.x, dtype) + 1.0) / 2.0 * last_x, 0.0, last_x)
    y = tf.clip_by_value((tf.cast(grid.y, dtype) + 1.0) / 2.0 * last_y, 0.0, last_y)
    # NaN coordinates (from a diverged network) read pixel 0 instead of an invalid index; the
    # NaN still reaches the loss through the depth, where training detects it.
    x = tf.where(tf.math.is_nan(x), tf.zeros_like(x), x)
    y = tf.where(tf.math.is_nan(y), tf.zeros_like(y), y)
    return _interpolate(values, x, y, source.width, exact)


def _interpolate(values: tf.Tensor, x: tf.Tensor, y: tf.Tensor, width, exact: bool) -> tf.Tensor:
    """Bilinear interpolation of prepared ``values`` ``[B, Hs * Ws, 4, C]`` (see
    :class:`Neighbourhoods`) at pixel coordinates ``x``, ``y`` ``[B, H, W]`` already clamped
    into the image: ``[B, H, W, C]``.

    The gradient is written out: with corner weights ``(1 - fx)(1 - fy)``, ``fx (1 - fy)``,
    ``(1 - fx) fy``, ``fx fy`` and ``e_k = sum_c upstream_c * corner_k_c``,
    ``d/dx = (e_TR - e_TL)(1 - fy) + (e_BR - e_BL) fy`` (and likewise for ``y``), in float32.
    TensorFlow would differentiate the exact path's float64 multiply-adds in float64; the
    values gradient scatters each corner's weighted upstream back to its pixel.
    """

    @tf.custom_gradient
    def interpolate(values, x, y):
        x0, y0 = tf.floor(x), tf.floor(y)
        right, left = tf.expand_dims(x - x0, -1), tf.expand_dims(x0 + 1.0 - x, -1)
        down, up = tf.expand_dims(y - y0, -1), tf.expand_dims(y0 + 1.0 - y, -1)
        # On the last row/column the far neighbours are the pixel itself, with weight 0.
        index = tf.cast(y0, tf.int32) * width + tf.cast(x0, tf.int32)
        corners = tf.gather(values, index, batch_dims=1)  # [B, H, W, 4, C]
        top_left, top_right, bottom_left, bottom_right = tf.unstack(corners, axis=-2)
        weights = (left * up, right * up, left * down, right * down)  # each [B, H, W, 1]
        out = top_left * weights[0]
        out = fused_multiply_add(top_right, weights[1], out, exact)
        out = fused_multiply_add(bottom_left, weights[2], out, exact)
        out = fused_multiply_add(bottom_right, weights[3], out, exact)

        def gradient(upstream):
            e_tl, e_tr, e_bl, e_br = (tf.reduce_sum(corner * upstream, axis=-1) for corner in
                                      (top_left, top_right, bottom_left, bottom_right))
            grad_x = (e_tr - e_tl) * up[..., 0] + (e_br - e_bl) * down[..., 0]
            grad_y = (e_bl - e_tl) * left[..., 0] + (e_br - e_tr) * right[..., 0]
            spread = tf.expand_dims(upstream, -2) * tf.stack(weights, axis=-2)
            batch = tf.shape(values)[0]
            segments = index + tf.reshape(tf.range(batch) * tf.shape(values)[1], [-1, 1, 1])
            grad_values = tf.math.unsorted_segment_sum(
                tf.reshape(spread, tf.concat([[-1], tf.shape(values)[2:]], 0)),
                tf.reshape(segments, [-1]), batch * tf.shape(values)[1])
            return tf.reshape(grad_values, tf.shape(values)), grad_x, grad_y

        return out, gradient

    return interpolate(values, x, y)


def bilinear_sample(image: tf.Tensor, grid: tf.Tensor, exact: bool = True) -> tf.Tensor:
    """Samples ``image`` at a normalized grid, clamping to the border.

    ``grid`` follows PyTorch's ``grid_sample(..., align_corners=True, padding_mode="border")``:
    ``(-1, -1)`` is the centre of the top-left pixel and ``(1, 1)`` of the bottom-right one, so
    grid pixel x lands exactly on source pixel x; points outside are clamped onto the edge.
    Differentiable with respect to the image and the grid (the gradient with respect to a
    clamped coordinate is zero); built from ``tf.gather`` so it compiles with XLA. With
    ``exact`` (the default) the result equals the original's bit for bit (see
    :func:`fused_multiply_add`); without, it is cheaper and within an ulp or so.

    Args:
        image: ``[B, Hs, Ws, C]``.
        grid: ``[B, H, W, 2]`` normalized ``(x, y)``.

    Returns:
        ``[B, H, W, C]``.
    """
    return sample_neighbourhoods(neighbourhoods(image), grid, exact)


@keras.saving.register_keras_serializable(package="monodepth_tf")
class BilinearSampler(GeometryLayer):
    """Layer form of :func:`bilinear_sample`: ``(image [B, Hs, Ws, C], grid [B, H, W, 2])``
    -> ``[B, H, W, C]``; ``exact`` as there."""

    def __init__(self, exact: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.exact = exact

    def call(self, image, grid):
        return bilinear_sample(image, grid, self.exact)

    def get_config(self):
        config = super().get_config()
        config.update(exact=self.exact)
        return config
