"""Adam as Keras computes it, in one fused kernel per variable.

Keras 3's Adam updates each variable with about ten separate elementwise ops (two for the
first moment, three for the second, five for the step), each a full pass over the variable in
memory: for Monodepth2's ~28 million weights, about 2 GB of memory traffic a step.
TensorFlow's ``ResourceApplyAdam`` kernel computes the same formulas in one pass (on the CPU
and on GPUs):

    m <- m + (g - m) (1 - beta_1)
    v <- v + (g^2 - v) (1 - beta_2)
    w <- w - (m lr sqrt(1 - beta_2^t) / (1 - beta_1^t)) / (sqrt(v) + epsilon)

with the same epsilon placement as Keras (outside the square root of the uncorrected second
moment). One rounding differs: the kernel forms ``1 - beta`` in float32 (1 - 0.999f is
0.00100004673), where Keras and PyTorch round 0.001 itself, so the second moment's averaging
weight is 4.7e-5 larger in relative terms (the first moment's, 2.4e-7). The optimizer's
variables (iterations, moments) are Keras Adam's, so checkpoints of either load in the other.
"""

import keras
import tensorflow as tf


def resource_handle(variable) -> tf.Tensor:
    """The resource handle of a Keras or TensorFlow variable (inside a strategy's update call,
    the local replica's copy)."""
    return variable.value.handle if isinstance(variable, keras.Variable) else variable.handle


class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` (same arguments, same variables, same update) whose update is
    TensorFlow's fused ``ResourceApplyAdam`` kernel (without ``amsgrad``, which keeps Keras'
    own update)."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=resource_handle(variable), m=resource_handle(self._momentums[index]),
            v=resource_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))
