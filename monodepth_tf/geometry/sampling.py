"""Bilinear sampling of an image at a normalized grid (``grid_sample`` with border padding)."""

from typing import NamedTuple

import keras
import tensorflow as tf

from monodepth_tf.geometry.camera import Grid
from monodepth_tf.geometry.numerics import GeometryLayer, fused_multiply_add


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


def sample_neighbourhoods(source: Neighbourhoods, grid, exact: bool = True,
                          fused: bool = False) -> tf.Tensor:
    """:func:`bilinear_sample` of an image prepared by :func:`neighbourhoods`.

    Args:
        source: the prepared ``[B, Hs, Ws, C]`` image.
        grid: ``[B, H, W, 2]`` normalized ``(x, y)``, or a :class:`Grid`.
        exact: sum the four corners with fused multiply-adds as the original's kernel does (see
            :func:`fused_multiply_add`); otherwise in plain float arithmetic.
        fused: without ``exact``, on float32 images: gather and weigh the corners in one XLA
            computation, and their gradient in another, which reaches the grid only (the
            loss's sources are data).

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
    if fused and not exact and values.dtype == tf.float32:
        return _fused_interpolate(values, x, y, tf.cast(source.width, tf.int32))
    return _interpolate(values, x, y, source.width, exact)


def _corners_and_weights(values, x, y, width):
    """The four corners ``[B, H, W, C]`` (top left, top right, bottom left, bottom right) of
    each sample, the distances to them: ``right = x - floor(x)``, ``left = 1 - right`` (as
    ``floor(x) + 1 - x``), likewise ``down`` and ``up``, each ``[B, H, W, 1]``, and the
    gathered pixel's index ``[B, H, W]``."""
    x0, y0 = tf.floor(x), tf.floor(y)
    right, left = tf.expand_dims(x - x0, -1), tf.expand_dims(x0 + 1.0 - x, -1)
    down, up = tf.expand_dims(y - y0, -1), tf.expand_dims(y0 + 1.0 - y, -1)
    # On the last row/column the far neighbours are the pixel itself, with weight 0.
    index = tf.cast(y0, tf.int32) * width + tf.cast(x0, tf.int32)
    corners = tf.unstack(tf.gather(values, index, batch_dims=1), axis=-2)
    return corners, (left, right, up, down), index


@tf.function(jit_compile=True, autograph=False)
def _fused_interpolate_forward(values, x, y, width):
    (top_left, top_right, bottom_left, bottom_right), (left, right, up, down), _ = \
        _corners_and_weights(values, x, y, width)
    return (top_left * (left * up) + top_right * (right * up) + bottom_left * (left * down)
            + bottom_right * (right * down))


@tf.function(jit_compile=True, autograph=False)
def _fused_interpolate_gradient(upstream, values, x, y, width):
    corners, (left, right, up, down), _ = _corners_and_weights(values, x, y, width)
    e_tl, e_tr, e_bl, e_br = (tf.reduce_sum(corner * upstream, axis=-1) for corner in corners)
    grad_x = (e_tr - e_tl) * up[..., 0] + (e_br - e_bl) * down[..., 0]
    grad_y = (e_bl - e_tl) * left[..., 0] + (e_br - e_tr) * right[..., 0]
    return grad_x, grad_y


@tf.custom_gradient
def _fused_interpolate(values, x, y, width):
    """:func:`_interpolate` without ``exact``, its forward pass and gradient each one XLA
    computation (the gather fused with the weighting), the corners gathered again for the
    gradient rather than kept. The gradient reaches ``x`` and ``y`` only: the sampled images
    are data."""
    def gradient(upstream):
        grad_x, grad_y = _fused_interpolate_gradient(upstream, values, x, y, width)
        return None, grad_x, grad_y, None

    return _fused_interpolate_forward(values, x, y, width), gradient


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
        (top_left, top_right, bottom_left, bottom_right), (left, right, up, down), index = \
            _corners_and_weights(values, x, y, width)
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
