"""FusedAdam: Keras' Adam update in TensorFlow's fused kernel, checked against Adam's formulas
in float64 NumPy, as keras.optimizers.Adam is. (Under MirroredStrategy it runs in
tests/test_distributed.py's whole training steps: two replicas against one device.)"""

import keras
import numpy as np
import tensorflow as tf

from monodepth_tf.training.optimizer import FusedAdam
from monodepth_tf.training.schedule import StepDecay

SHAPES = [(3, 3, 8, 16), (16,), (7, 7, 3, 4)]
STEPS = 5


def start_and_gradients(seed: int = 0):
    """Small starting weights (so float32 keeps the updates' digits) and a gradient per step."""
    rng = np.random.default_rng(seed)
    start = [0.01 * rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(np.float32) * 10.0 ** rng.integers(-3, 2)
              for s in SHAPES] for _ in range(STEPS)]
    return start, grads


def adam_float64(start, grads, rates, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Adam as Keras (and TensorFlow's kernel) write it, in float64: the bias corrections in
    the step size, epsilon added to the uncorrected second moment's square root."""
    weights = [w.astype(np.float64) for w in start]
    m = [np.zeros_like(w) for w in weights]
    v = [np.zeros_like(w) for w in weights]
    for t, (step_grads, rate) in enumerate(zip(grads, rates), start=1):
        alpha = rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        for i, g in enumerate(step_grads):
            g = g.astype(np.float64)
            m[i] += (g - m[i]) * (1 - beta_1)
            v[i] += (g * g - v[i]) * (1 - beta_2)
            weights[i] -= alpha * m[i] / (np.sqrt(v[i]) + epsilon)
    return weights, m, v


def train(optimizer_class, start, grads):
    """Weights, first and second moments after applying ``grads`` in a tf.function step, with
    the step-decay schedule dropping after two steps."""
    variables = [keras.Variable(w) for w in start]
    optimizer = optimizer_class(StepDecay(1e-3, step_size_epochs=1, steps_per_epoch=2))
    optimizer.build(variables)

    @tf.function
    def step(g):
        optimizer.apply_gradients(zip(g, variables))

    for step_grads in grads:
        step([tf.constant(g) for g in step_grads])
    as_numpy = lambda vs: [np.asarray(v.numpy()) for v in vs]  # noqa: E731
    return as_numpy(variables), as_numpy(optimizer._momentums), as_numpy(optimizer._velocities)


def assert_matches_float64(result, start, grads):
    rates = [1e-3 * 0.1 ** (t // 2) for t in range(STEPS)]  # a drop every two steps
    expected = adam_float64(start, grads, rates)
    for got, want, first in zip(result[0], expected[0], start):
        # the weights moved by 1e-4..1e-3 a step; float32 keeps them to ~1e-9
        np.testing.assert_allclose(got - first, want - first, rtol=1e-4, atol=2e-9)
    for got, want in zip(result[1] + result[2], expected[1] + expected[2]):
        # TensorFlow's kernel forms 1 - beta in float32: 1 - 0.999f is 4.7e-5 above 0.001
        np.testing.assert_allclose(got, want, rtol=1e-4)


def test_fused_adam_computes_adams_update():
    start, grads = start_and_gradients()
    assert_matches_float64(train(FusedAdam, start, grads), start, grads)
    assert_matches_float64(train(keras.optimizers.Adam, start, grads), start, grads)


def optimizer_checkpoint(optimizer_class, start):
    """An optimizer built on fresh variables, and a checkpoint of both."""
    variables = [keras.Variable(w) for w in start]
    optimizer = optimizer_class(1e-3)
    optimizer.build(variables)
    return optimizer, variables, tf.train.Checkpoint(optimizer=optimizer, weights=variables)


def test_a_checkpoint_of_keras_adam_restores_into_fused_adam(tmp_path):
    """Same variables in the same places: a run checkpointed with Keras' Adam resumes with
    FusedAdam (and the other way), moments and step count included."""
    start, grads = start_and_gradients()
    adam, variables, checkpoint = optimizer_checkpoint(keras.optimizers.Adam, start)
    adam.apply_gradients(zip([tf.constant(g) for g in grads[0]], variables))
    path = checkpoint.write(str(tmp_path / "adam"))
    fused, _, checkpoint = optimizer_checkpoint(FusedAdam, start)
    checkpoint.read(path).assert_consumed()
    assert int(fused.iterations.numpy()) == 1
    assert len(fused.variables) == len(adam.variables) == 2 + 2 * len(SHAPES)  # step, rate
    for got, want in zip(fused.variables, adam.variables):
        assert np.any(want.numpy() != 0)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
