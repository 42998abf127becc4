"""BatchNorm whose training statistics span every replica of a tf.distribute strategy.

In training mode under a strategy with N > 1 replicas, the mean and variance of each channel are
those of the global batch (every replica's share), the moving statistics are updated from them,
and the gradient is that of normalizing by the global statistics. N replicas therefore compute
the update one device would compute on the whole batch. In inference mode the layer is Keras'
BatchNormalization, number for number; training on one replica (or outside a strategy) runs
TensorFlow's fused kernel, the same function up to float32 rounding.

How the cross-replica sums are paired
-------------------------------------
``ReplicaContext.all_reduce`` pairs the calls of the replicas by the order in which they are
made. The forward pass is made in program order, but the gradient tape walks the backward pass in
an order that can differ between replicas, so all-reduces of different layers (of equal shapes)
can be summed together. Here every sum is a ``CollectiveReduceV2`` with an explicit key:

- the group key names the strategy's set of replicas (see :func:`group_key`);
- the instance key of the k-th synchronized normalization a replica runs in one
  ``strategy.run`` call is built from ``k``, the number of channels and the direction (forward
  sum, forward variance, backward sums). The forward pass fixes ``k`` in program order, which
  is the same on every replica, and the backward keys are taken at that moment, so the order in
  which the tape later runs the backward does not matter. The channel count is part of the key
  because TensorFlow remembers the shape of an instance for the life of the process.

The backward pass is written out rather than differentiated through the collectives: with
``xhat = (x - mean) / sqrt(var + eps)`` over the global batch of M values per channel and ``g``
the gradient of the loss with respect to ``xhat``,
``dx = (g - sum(g) / M - xhat * sum(g * xhat) / M) / sqrt(var + eps)``, where both sums run
over the global batch: one keyed all-reduce of ``[sum(g), sum(g * xhat)]`` per layer.

Each collective takes the local copy of the layer's moving mean as its ordering token, so that
TensorFlow's automatic control dependencies order it only among ops of its own replica (without
a token they would chain every replica's collectives into one sequence and deadlock).

Under MultiWorkerMirroredStrategy the same collectives run across the workers (the group has
every replica of every worker; the workers agree on the keys because they run the same program).
All replicas compute the same statistics, so the mirrored copies of the moving averages stay
identical (Keras' per-replica BatchNorm let each replica write its own statistics into its copy).

XLA: TensorFlow does not compile collectives on CPU. ``Trainer`` therefore compiles only the
collective-free loss with XLA when ``--jit_compile`` meets more than one replica.
"""

import threading
import weakref
from typing import Callable, Dict, Tuple

import keras
import tensorflow as tf

# Group keys of our collectives start here, far above the keys tf.distribute's own collective
# implementations allocate (they count up from 1).
GROUP_KEY_BASE = 0x5B0000

# Directions of the three collectives of one normalization (the low bits of an instance key).
FORWARD_SUM, FORWARD_VARIANCE, BACKWARD_SUMS = 0, 1, 2
_DIRECTIONS = 4

# Synchronized normalizations one replica may run in one strategy.run call (resnet152's pose
# and depth encoders with pose pairs run about 470).
MAX_CALLS_PER_STEP = 1024

_group_keys: Dict[Tuple[int, Tuple[str, ...]], int] = {}
_calls: "weakref.WeakKeyDictionary[tf.distribute.ReplicaContext, int]" = \
    weakref.WeakKeyDictionary()
_lock = threading.Lock()


def group_key(context: tf.distribute.ReplicaContext) -> int:
    """The collective group key of the context's strategy.

    Strategies are numbered in the order a process first uses them, keyed by their replica count
    and local devices: the workers of a MultiWorkerMirroredStrategy run the same program and so
    agree on the number.
    """
    strategy = context.strategy
    identity = (context.num_replicas_in_sync, tuple(strategy.extended.worker_devices))
    with _lock:
        if identity not in _group_keys:
            _group_keys[identity] = GROUP_KEY_BASE + len(_group_keys)
        return _group_keys[identity]


def instance_key(call: int, channels: int, direction: int) -> int:
    """The instance key of a direction of the ``call``-th normalization of a replica's step."""
    if not 0 <= call < MAX_CALLS_PER_STEP:
        raise ValueError(f"more than {MAX_CALLS_PER_STEP} synchronized BatchNorm calls in one "
                         "replica step")
    return 1 + direction + _DIRECTIONS * (call + MAX_CALLS_PER_STEP * channels)


def _next_call(context: tf.distribute.ReplicaContext) -> int:
    """Counts the synchronized normalizations of this replica in this strategy.run call
    (each call of strategy.run makes fresh replica contexts)."""
    with _lock:
        call = _calls.get(context, 0)
        _calls[context] = call + 1
    return call


def synchronized_normalize(x: tf.Tensor, epsilon: float,
                           all_reduce: Callable[[tf.Tensor, int], tf.Tensor]):
    """Normalizes ``x`` ``[..., C]`` (float32) by its statistics over every replica.

    Args:
        x: this replica's values; statistics run over every axis but the last.
        epsilon: added to the variance.
        all_reduce: ``(tensor [n], direction) -> sum over the replicas [n]``.

    Returns:
        xhat ``[..., C]`` and the global mean and (biased) variance ``[C]``, the latter two
        without gradient.
    """
    axes = list(range(len(x.shape) - 1))
    statistics = {}

    @tf.custom_gradient
    def normalize(values):
        count = tf.cast(tf.reduce_prod(tf.shape(values)[:-1]), values.dtype)
        sums = all_reduce(tf.concat([tf.reduce_sum(values, axes), count[None]], 0), FORWARD_SUM)
        total = sums[-1]
        mean = sums[:-1] / total
        centered = values - mean
        variance = all_reduce(tf.reduce_sum(tf.square(centered), axes),
                              FORWARD_VARIANCE) / total
        inv_std = tf.math.rsqrt(variance + epsilon)
        xhat = centered * inv_std
        statistics.update(mean=mean, variance=variance)

        def gradient(upstream):
            local = tf.concat([tf.reduce_sum(upstream, axes),
                               tf.reduce_sum(upstream * xhat, axes)], 0)
            mean_g, mean_g_xhat = tf.split(all_reduce(local, BACKWARD_SUMS) / total, 2)
            return inv_std * (upstream - mean_g - xhat * mean_g_xhat)

        return xhat, gradient

    xhat = normalize(x)
    return (xhat, tf.stop_gradient(statistics["mean"]),
            tf.stop_gradient(statistics["variance"]))


@keras.saving.register_keras_serializable(package="monodepth_tf")
class SyncBatchNormalization(keras.layers.BatchNormalization):
    """Keras BatchNormalization (channels last) with statistics over every replica in training.

    Call:
        inputs ``[B, H, W, C]`` (any rank, channels last), ``training``.

    Returns:
        ``[B, H, W, C]`` normalized, scaled and shifted, in the layer's compute dtype.
    """

    def call(self, inputs, training=None, mask=None):
        context = tf.distribute.get_replica_context()
        if not (training and self.trainable):
            return super().call(inputs, training=training, mask=mask)
        if context is None or context.num_replicas_in_sync == 1:
            if self._fusable(inputs, mask):
                return self._fused_training_call(inputs)
            return super().call(inputs, training=training, mask=mask)
        if self.axis not in (-1, len(inputs.shape) - 1) or self.renorm or mask is not None:
            raise ValueError(f"{self.name}: synchronized BatchNorm supports channels-last "
                             "inputs without renorm or mask")
        x = tf.cast(inputs, tf.float32)
        channels = int(x.shape[-1])
        call = _next_call(context)
        group = group_key(context)
        # the local copy of a mirrored variable: orders this replica's collectives only
        token = self.moving_mean.handle

        def all_reduce(t, direction):
            return tf.raw_ops.CollectiveReduceV2(
                input=t, group_size=context.num_replicas_in_sync, group_key=group,
                instance_key=instance_key(call, channels, direction), ordering_token=[token],
                merge_op="Add", final_op="Id")

        xhat, mean, variance = synchronized_normalize(x, self.epsilon, all_reduce)
        self._update_moving_statistics(mean, variance)
        outputs = xhat
        if self.scale:
            outputs = outputs * tf.cast(self.gamma, tf.float32)
        if self.center:
            outputs = outputs + tf.cast(self.beta, tf.float32)
        return tf.cast(outputs, self.compute_dtype)

    def _update_moving_statistics(self, mean: tf.Tensor, variance: tf.Tensor) -> None:
        """Keras' running averages, from the batch mean and biased variance ``[C]``."""
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum))

    def _fusable(self, inputs, mask) -> bool:
        return (len(inputs.shape) == 4 and self.axis in (-1, 3) and self.scale and self.center
                and not self.renorm and mask is None)

    def _fused_training_call(self, inputs: tf.Tensor) -> tf.Tensor:
        """Training on one replica with TensorFlow's fused kernel (FusedBatchNormV3 and its
        gradient): the same function as Keras' layer, about 2.5x faster forward and backward on
        the CPU. The kernel's batch variance is Bessel-corrected; Keras keeps the biased one in
        its running average, and so does this layer (see ``synchronized_normalize``).

        Under mixed precision the kernel takes the bfloat16 or float16 activations as they are
        and computes in float32 inside (its statistics, scale and offset are float32): the same
        numbers as casting them to float32 and the result back, without those two passes (and
        their two in the gradient)."""
        x = inputs if inputs.dtype in (tf.bfloat16, tf.float16) else tf.cast(inputs, tf.float32)
        outputs, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
            x, tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32),
            epsilon=self.epsilon, data_format="NHWC", is_training=True)
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        variance = unbiased * ((count - 1.0) / tf.maximum(count, 1.0))
        self._update_moving_statistics(tf.stop_gradient(mean), tf.stop_gradient(variance))
        return tf.cast(outputs, self.compute_dtype)


def batch_norm(name: str) -> SyncBatchNormalization:
    """BatchNorm with PyTorch's defaults (eps 1e-5, running-average momentum 0.1),
    synchronized across replicas in training."""
    return SyncBatchNormalization(momentum=0.9, epsilon=1e-5, name=name)
