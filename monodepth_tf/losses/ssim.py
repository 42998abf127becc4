"""SSIM over 3x3 windows (reflection-padded) and the photometric error ``0.85 * SSIM + 0.15 * L1``.
"""

from typing import List, NamedTuple, Sequence

import keras
import tensorflow as tf

from monodepth_tf.geometry.numerics import GeometryLayer


SSIM_C1 = 0.01 ** 2


SSIM_C2 = 0.03 ** 2


SSIM_WEIGHT = 0.85


def _box_mean3x3(padded: tf.Tensor, divisor=9.0) -> tf.Tensor:
    """The 3x3 means of ``[N, H + 2, W + 2, C]`` ('valid'): ``[N, H, W, C]``, bit for bit
    ``tf.nn.avg_pool2d(padded, 3, 1, "VALID")`` and the original's ``AvgPool2d(3, 1)``.

    The nine terms of a window are added one at a time in row-major order, then divided by 9,
    as both pooling kernels do; the three terms of the first row are added for all rows at once
    and reused (the same additions in the same order). On an AVX2 CPU (Zen 3) TensorFlow's
    AvgPool on three channels took about 3x as long (batch 4, 192x640: 99 ms against 33 ms)
    and a quarter of a training step's op time. Exact only where grappler's arithmetic
    optimizer is off (eager, and the training step: ``training.step.keep_graph_arithmetic``).
    ``divisor`` is 9, or a tensor holding 9 where XLA would otherwise multiply by 1/9.

    The windows are ``tf.slice`` of static sizes where the shape is known: indexing with
    ``[:, a:b]`` and dynamic sizes build several more graph nodes per window (ten photometric
    errors and their gradients: 10961 nodes, 4.7-6.4 s to trace on a Zen 3, against 4802 nodes
    and 2-2.6 s), and tracing a training step's loss spent most of its time here.
    """
    height, width = padded.shape[1], padded.shape[2]
    if height is None or width is None:
        dynamic = tf.shape(padded)
        height, width = dynamic[1], dynamic[2]
    height, width = height - 2, width - 2

    def window(source, row, column, rows, columns):
        return tf.slice(source, tf.stack([0, row, column, 0]), tf.stack([-1, rows, columns, -1]))

    rows = (window(padded, 0, 0, -1, width) + window(padded, 0, 1, -1, width)
            + window(padded, 0, 2, -1, width))
    total = window(rows, 0, 0, height, -1)
    for i in (1, 2):
        for j in (0, 1, 2):
            total = total + window(padded, i, j, height, width)
    return total / divisor


@tf.custom_gradient
def _mean3x3(padded: tf.Tensor) -> tf.Tensor:
    """The 3x3 means of ``[N, H + 2, W + 2, C]`` (a 'valid' average pool): ``[N, H, W, C]``.

    The gradient is the transposed box filter, itself a 3x3 mean of the zero-padded incoming
    gradient: much cheaper on the CPU than TensorFlow's pooling gradient for few channels.
    """
    return _box_mean3x3(padded), _mean3x3_transposed


def _mean3x3_transposed(upstream: tf.Tensor, divisor=9.0) -> tf.Tensor:
    """The transpose of :func:`_mean3x3`: ``[N, H, W, C]`` -> ``[N, H + 2, W + 2, C]``, the 3x3
    mean of the zero-padded map (``divisor`` as in :func:`_box_mean3x3`)."""
    return _box_mean3x3(tf.pad(upstream, [[0, 0], [2, 2], [2, 2], [0, 0]]), divisor)


class SsimStatistics(NamedTuple):
    """The local statistics of an image that every SSIM against it reuses.

    Attributes:
        image: ``y`` ``[B, H, W, C]``.
        mean: its 3x3 local mean ``mu_y``; ``mean_squared``: ``mu_y * mu_y``; ``variance``:
            the local mean of ``y * y`` minus ``mu_y * mu_y``; all ``[B, H, W, C]``.
        padded: ``y`` reflection-padded by one pixel, ``[B, H + 2, W + 2, C]``.
    """

    image: tf.Tensor
    mean: tf.Tensor
    mean_squared: tf.Tensor
    variance: tf.Tensor
    padded: tf.Tensor


def _reflect_pad1(image: tf.Tensor) -> tf.Tensor:
    return tf.pad(image, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")


def ssim_statistics(image: tf.Tensor) -> SsimStatistics:
    """:class:`SsimStatistics` of ``image`` ``[B, H, W, C]``."""
    padded = _reflect_pad1(image)
    mean = _mean3x3(padded)
    # padding copies values: pad(y * y) is pad(y) * pad(y), bit for bit
    mean_of_square = _mean3x3(padded * padded)
    mean_squared = mean * mean
    return SsimStatistics(image, mean, mean_squared, mean_of_square - mean_squared, padded)


def _local_means_adjoint(maps: Sequence[tf.Tensor]) -> List[tf.Tensor]:
    """The transpose of the reflection-padded 3x3 means (:func:`_mean3x3` of
    :func:`_reflect_pad1`) applied to each ``[B, H, W, C]`` map: their gradient with respect
    to the maps they were taken of."""
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
    mu_x, a, s, p, q, ratio, unclipped = _ssim_terms(
        _reflect_pad1(x), _reflect_pad1(y), mu_y, mu_y_squared, sigma_y, 9.0)
    dissimilarity = tf.clip_by_value(unclipped, 0.0, 1.0)

    def gradient(upstream):
        # The clip passes the gradient where it left the value unchanged (bounds included).
        g_ratio = tf.where(tf.equal(dissimilarity, unclipped), upstream * -0.5, 0.0)
        g_a, g_s, g_p, g_q, g_mu_x = _factor_gradients(g_ratio, mu_x, mu_y, a, s, p, q, ratio)
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
class SSIM(GeometryLayer):
    """Layer form of :func:`ssim_dissimilarity`: ``(x, y) [B, H, W, C]`` -> ``[B, H, W, C]``."""

    def call(self, x, y):
        return ssim_dissimilarity(x, y)


def photometric_error(pred: tf.Tensor, target, no_ssim: bool = False,
                      fused: bool = False) -> tf.Tensor:
    """``0.85 * SSIM + 0.15 * L1`` (or L1 alone), averaged over channels: ``[B, H, W, 1]``.

    ``pred`` is ``[B, H, W, C]``; ``target`` the same, or its :class:`SsimStatistics`.

    ``fused``: compute it and its gradient as two XLA kernels (:func:`fused_photometric_error`;
    the gradient reaches ``pred`` only); otherwise with TensorFlow's ops, in the original's
    order of operations and roundings.
    """
    statistics = target if isinstance(target, SsimStatistics) else None
    target = statistics.image if statistics is not None else target
    if fused and not no_ssim:
        statistics = statistics or ssim_statistics(target)
        return fused_photometric_error(pred, statistics.padded, statistics.mean,
                                       statistics.mean_squared, statistics.variance)
    l1 = tf.reduce_mean(tf.abs(target - pred), axis=-1, keepdims=True)
    if no_ssim:
        return l1
    ssim = tf.reduce_mean(ssim_dissimilarity(pred, statistics or target), axis=-1,
                          keepdims=True)
    return SSIM_WEIGHT * ssim + (1.0 - SSIM_WEIGHT) * l1


def _factor_gradients(g_ratio, mu_x, mu_y, a, s, p, q, ratio):
    """The gradients of ``ratio = A S / (P Q)`` (see :func:`_ssim_against`) with respect to
    ``A``, ``S``, ``P``, ``Q`` and, through ``A`` and ``P``, to ``mu_x``, given its own
    ``g_ratio``: each factor's is ``ratio`` over that factor (negated in the denominator)."""
    g_q_ratio = g_ratio * ratio
    g_a, g_s = g_q_ratio / a, g_q_ratio / s
    g_p, g_q = -g_q_ratio / p, -g_q_ratio / q
    return g_a, g_s, g_p, g_q, 2.0 * (mu_y * (g_a - g_s) + mu_x * (g_p - g_q))


def _ssim_terms(padded_x, padded_y, mu_y, mu_y_squared, sigma_y, nine):
    """SSIM's per-pixel terms of ``x`` against ``y`` (see :func:`_ssim_against`), from both
    reflection-padded: the local mean of ``x``, ``A``, ``S``, ``P``, ``Q``, their ratio
    ``AS / PQ`` and its clipped ``(1 - ratio) / 2``. The padded products are products of the
    padded images: each image is padded once.

    ``nine``: a scalar tensor holding 9, an argument of the XLA computation so that XLA
    divides by it: given the constant 9 it multiplies by float32's 1/9 (7e-9 too large,
    relatively), which biases the variances (small differences of such means) and so the loss, by 5e-6
    relative on the reference fixture."""
    mu_x, e_xx, e_xy = (_box_mean3x3(m, nine) for m in (padded_x, padded_x * padded_x,
                                                         padded_x * padded_y))
    mu_x_squared, mu_xy = mu_x * mu_x, mu_x * mu_y
    a, s = 2.0 * mu_xy + SSIM_C1, 2.0 * (e_xy - mu_xy) + SSIM_C2
    p, q = mu_x_squared + mu_y_squared + SSIM_C1, (e_xx - mu_x_squared) + sigma_y + SSIM_C2
    ratio = (a * s) / (p * q)
    unclipped = (1.0 - ratio) / 2.0
    return mu_x, a, s, p, q, ratio, unclipped


def _interior(padded: tf.Tensor) -> tf.Tensor:
    return padded[:, 1:-1, 1:-1]


@tf.function(jit_compile=True, autograph=False)
def _fused_forward(x, padded_y, mu_y, mu_y_squared, sigma_y, nine):
    unclipped = _ssim_terms(_reflect_pad1(x), padded_y, mu_y, mu_y_squared, sigma_y, nine)[-1]
    ssim = tf.reduce_mean(tf.clip_by_value(unclipped, 0.0, 1.0), axis=-1, keepdims=True)
    l1 = tf.reduce_mean(tf.abs(_interior(padded_y) - x), axis=-1, keepdims=True)
    return SSIM_WEIGHT * ssim + (1.0 - SSIM_WEIGHT) * l1


@tf.function(jit_compile=True, autograph=False)
def _fused_gradient(upstream, x, padded_y, mu_y, mu_y_squared, sigma_y, nine):
    """The gradient of :func:`_fused_forward` with respect to ``x``, its terms recomputed
    (cheaper than keeping them: they are elementwise, fused into the same loops).

    The three 3x3 means are transposed together: with ``P`` the reflection padding and ``M``
    the 'valid' 3x3 mean, ``x * P^T(u) = P^T(u * P(x))`` (``P^T`` adds each padded value back
    to the pixel it copies), so ``P^T M^T g_mu + 2 x P^T M^T g_q + y P^T M^T g_s`` is one
    ``P^T`` of ``M^T g_mu + 2 P(x) M^T g_q + P(y) M^T g_s``.
    """
    padded_x = _reflect_pad1(x)
    mu_x, a, s, p, q, ratio, unclipped = _ssim_terms(padded_x, padded_y, mu_y, mu_y_squared,
                                                     sigma_y, nine)
    channels = tf.cast(tf.shape(x)[-1], x.dtype)
    g_ssim = upstream * (SSIM_WEIGHT / channels)
    g_l1 = upstream * ((1.0 - SSIM_WEIGHT) / channels)
    inside = tf.logical_and(unclipped >= 0.0, unclipped <= 1.0)
    _, g_s, _, g_q, g_mu_x = _factor_gradients(tf.where(inside, g_ssim * -0.5, 0.0), mu_x,
                                               mu_y, a, s, p, q, ratio)
    t_mu_x, t_e_xx, t_e_xy = (_mean3x3_transposed(m, nine) for m in (g_mu_x, g_q, 2.0 * g_s))
    padded_sum = t_mu_x + 2.0 * padded_x * t_e_xx + padded_y * t_e_xy
    unpadded = tf.raw_ops.MirrorPadGrad(input=padded_sum,
                                        paddings=[[0, 0], [1, 1], [1, 1], [0, 0]],
                                        mode="REFLECT")
    return unpadded - tf.sign(_interior(padded_y) - x) * g_l1


@tf.custom_gradient
def fused_photometric_error(x, padded_y, mu_y, mu_y_squared, sigma_y):
    """``0.85 * SSIM + 0.15 * L1`` of ``x`` ``[B, H, W, C]`` against ``y`` averaged over
    channels, ``[B, H, W, 1]``, given y reflection-padded and its statistics (see
    :class:`SsimStatistics`); the forward pass and the gradient are each one XLA computation,
    whose loops fuse the 3x3 means and the arithmetic that TensorFlow's kernels run as
    separate passes over the images.

    The same formula as :func:`photometric_error`, with XLA's roundings: it contracts
    products and sums into fused multiply-adds, so most values differ from the original's in
    their last bits. The gradient reaches ``x`` only (the target and its statistics are data).
    """
    nine = tf.constant(9.0, x.dtype)

    def gradient(upstream):
        return (_fused_gradient(upstream, x, padded_y, mu_y, mu_y_squared, sigma_y, nine),
                None, None, None, None)

    return _fused_forward(x, padded_y, mu_y, mu_y_squared, sigma_y, nine), gradient
