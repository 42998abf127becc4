"""Synchronized BatchNorm and distributed steps: N replicas compute what one device computes.

TensorFlow's logical CPU devices must be configured before anything initializes the runtime,
so the distributed computations run in fresh processes (this file run as a script, see the end);
the tests compare what they save.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import PROJECT_ROOT

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
GLOBAL_BATCH = 4
HEIGHT, WIDTH = 64, 192
REPEATS = 3


def run_script(*args, env=None, timeout=600):
    result = subprocess.run([sys.executable, "-m", "tests.test_distributed", *map(str, args)],
                            cwd=PROJECT_ROOT, env=env or ENV, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


# ----------------------------------------------------------------------------------------------
# The layer alone: two replicas against NumPy float64 BatchNorm on the concatenated batch.

def numpy_batch_norm(x, gamma, beta, upstream, eps):
    """Forward and input/parameter gradients of train-mode BatchNorm over axes 0-2 (float64),
    by the chain rule through mean and biased variance."""
    axes = (0, 1, 2)
    count = x.shape[0] * x.shape[1] * x.shape[2]
    mean = x.mean(axes)
    variance = ((x - mean) ** 2).mean(axes)
    inv_std = 1.0 / np.sqrt(variance + eps)
    xhat = (x - mean) * inv_std
    y = gamma * xhat + beta
    g = upstream * gamma  # dL/dxhat
    d_variance = (g * (x - mean)).sum(axes) * -0.5 * inv_std ** 3
    d_mean = -(g * inv_std).sum(axes) + d_variance * (-2.0 * (x - mean)).mean(axes)
    dx = g * inv_std + d_variance * 2.0 * (x - mean) / count + d_mean / count
    return dict(y=y, dx=dx, dgamma=(upstream * xhat).sum(axes), dbeta=upstream.sum(axes),
                mean=mean, variance=variance)


def layer_check(out):
    """Two replicas each run a BatchNorm layer twice (the second call on a nonlinear function of
    the first output, as a pose encoder runs twice per step) and a second layer in between;
    saves outputs and gradients of the loss sum(y * w)."""
    import tensorflow as tf
    from monodepth_tf.networks.sync_batchnorm import batch_norm

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(5)
    x = rng.normal(3.0, 2.0, size=(4, 5, 6, 8)).astype(np.float32)
    w1, w2 = (rng.normal(size=(4, 5, 6, 8)).astype(np.float32) for _ in range(2))
    params = {k: rng.normal(1.0, 0.5, size=8).astype(np.float32) for k in "gbGB"}
    results = {}
    for repeat in range(REPEATS):
        with strategy.scope():
            first, second = batch_norm("first"), batch_norm("second")
            for layer, (g, b) in ((first, "gb"), (second, "GB")):
                layer.build((None, 5, 6, 8))
                layer.gamma.assign(params[g])
                layer.beta.assign(params[b])
        halves = strategy.experimental_distribute_values_from_function(
            lambda c: tuple(a[2 * c.replica_id_in_sync_group:][:2] for a in (x, w1, w2)))

        def replica(values):
            xs, ws1, ws2 = values
            with tf.GradientTape() as tape:
                tape.watch(xs)
                y1 = first(xs, training=True)
                y2 = second(tf.square(y1), training=True)
                y3 = first(y1 + 0.5 * y2, training=True)
                loss = tf.reduce_sum(y1 * ws1) + tf.reduce_sum(y3 * ws2)
            grads = tape.gradient(loss, [xs, first.gamma, first.beta, second.gamma, second.beta])
            return [y1, y3] + grads

        outputs = tf.function(lambda v: strategy.run(replica, args=(v,)))(halves)
        per_replica = [[t.numpy() for t in strategy.experimental_local_results(o)]
                       for o in outputs]
        for name, parts in zip(("y1", "y3", "dx"), per_replica[:3]):
            results[f"{name}_{repeat}"] = np.concatenate(parts)
        for name, parts in zip(("dgamma1", "dbeta1", "dgamma2", "dbeta2"), per_replica[3:]):
            results[f"{name}_{repeat}"] = sum(parts)  # the strategy sums replicas' gradients
        for layer in (first, second):
            for v in (layer.moving_mean, layer.moving_variance):
                copies = [c.numpy() for c in v.value.values]
                results[f"{layer.name}_{v.name}_{repeat}"] = np.stack(copies)
    np.savez(out, x=x, w1=w1, w2=w2, **params, **results)


def numpy_layer_reference(saved, eps=1e-5):
    """The same computation as layer_check on one float64 batch: forward, then backward."""
    x, w1, w2 = (saved[k].astype(np.float64) for k in ("x", "w1", "w2"))
    g, b, G, B = (saved[k].astype(np.float64) for k in "gbGB")
    first = numpy_batch_norm(x, g, b, np.zeros_like(x), eps)
    y1 = first["y"]
    second = numpy_batch_norm(y1 ** 2, G, B, np.zeros_like(x), eps)
    z = y1 + 0.5 * second["y"]
    third = numpy_batch_norm(z, g, b, w2, eps)
    # backward: y3 = BN1(z), z = y1 + 0.5 * BN2(y1^2), loss = sum(y1 w1) + sum(y3 w2)
    dz = third["dx"]
    through_second = numpy_batch_norm(y1 ** 2, G, B, 0.5 * dz, eps)
    dy1 = w1 + dz + through_second["dx"] * 2.0 * y1
    through_first = numpy_batch_norm(x, g, b, dy1, eps)
    moving = {}
    for name, calls in (("first", (first, third)), ("second", (second,))):
        mean, var = np.zeros_like(g), np.ones_like(g)
        for call in calls:
            mean = 0.9 * mean + 0.1 * call["mean"]
            var = 0.9 * var + 0.1 * call["variance"]
        moving[name] = (mean, var)
    return dict(y1=y1, y3=third["y"], dx=through_first["dx"],
                dgamma1=through_first["dgamma"] + third["dgamma"],
                dbeta1=through_first["dbeta"] + third["dbeta"],
                dgamma2=through_second["dgamma"], dbeta2=through_second["dbeta"]), moving


def test_numpy_reference_gradient_matches_finite_differences():
    """The float64 reference itself, checked against central differences of its forward."""
    rng = np.random.default_rng(2)
    x = rng.normal(1.0, 2.0, size=(2, 3, 2, 3))
    gamma, beta, w = rng.normal(size=3), rng.normal(size=3), rng.normal(size=x.shape)
    loss = lambda xx: (numpy_batch_norm(xx, gamma, beta, w, 1e-5)["y"] * w).sum()  # noqa: E731
    analytic = numpy_batch_norm(x, gamma, beta, w, 1e-5)["dx"]
    h, numeric = 1e-6, np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        numeric[index] = (loss(x + step) - loss(x - step)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def layer_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("layer") / "layer.npz"
    run_script("layer", out)
    return dict(np.load(out))


def test_synchronized_batchnorm_matches_float64_batchnorm_on_the_global_batch(layer_results):
    """Forward outputs, input gradients and parameter gradients of two replicas (two samples
    each) equal float64 BatchNorm on the four samples, in each of three fresh traces. Values are
    O(1)-O(10) and float32 carries 7 digits: 1e-4 relative + 1e-5 absolute. Per-replica
    statistics miss this by far more (the two halves have different means)."""
    reference, _ = numpy_layer_reference(layer_results)
    for repeat in range(REPEATS):
        for name, expected in reference.items():
            np.testing.assert_allclose(layer_results[f"{name}_{repeat}"], expected,
                                       rtol=1e-4, atol=1e-5, err_msg=f"{name}, trace {repeat}")


def test_moving_statistics_follow_the_global_statistics(layer_results):
    _, moving = numpy_layer_reference(layer_results)
    for repeat in range(REPEATS):
        for name, (mean, var) in moving.items():
            means = layer_results[f"{name}_moving_mean_{repeat}"]
            variances = layer_results[f"{name}_moving_variance_{repeat}"]
            np.testing.assert_array_equal(means[0], means[1])  # replicas' copies agree
            np.testing.assert_array_equal(variances[0], variances[1])
            np.testing.assert_allclose(means[0], mean, rtol=1e-5, atol=1e-6, err_msg=name)
            np.testing.assert_allclose(variances[0], var, rtol=1e-5, atol=1e-6, err_msg=name)


def test_one_replica_training_runs_the_fused_kernel_with_the_same_numbers():
    """Outside a multi-replica strategy, training runs TensorFlow's fused BatchNorm kernel: the
    same forward, gradients and (biased-variance) moving statistics as float64 BatchNorm."""
    import tensorflow as tf
    from monodepth_tf.networks.sync_batchnorm import batch_norm

    rng = np.random.default_rng(11)
    x = rng.normal(3.0, 2.0, size=(2, 5, 6, 8)).astype(np.float32)
    w = rng.normal(size=x.shape).astype(np.float32)
    gamma, beta = (rng.normal(1.0, 0.5, size=8).astype(np.float32) for _ in range(2))
    layer = batch_norm("single")
    layer.build(x.shape)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)

    @tf.function
    def step(values):
        with tf.GradientTape() as tape:
            tape.watch(values)
            y = layer(values, training=True)
            loss = tf.reduce_sum(y * w)
        return [y] + tape.gradient(loss, [values, layer.gamma, layer.beta])

    y, dx, dgamma, dbeta = (t.numpy() for t in step(tf.constant(x)))
    ops = {op.type for op in step.get_concrete_function(tf.constant(x)).graph.get_operations()}
    assert "FusedBatchNormV3" in ops
    expected = numpy_batch_norm(x.astype(np.float64), gamma.astype(np.float64),
                                beta.astype(np.float64), w.astype(np.float64), 1e-5)
    for name, value in (("y", y), ("dx", dx), ("dgamma", dgamma), ("dbeta", dbeta)):
        np.testing.assert_allclose(value, expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    # one update from the initial (0, 1): 0.1 of the batch mean and biased variance
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * expected["mean"], rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(),
                               0.9 + 0.1 * expected["variance"], rtol=1e-5)


def test_bfloat16_training_feeds_the_fused_kernel_without_casts_and_the_same_numbers():
    """Under bfloat16 the layer hands its bfloat16 activations to the fused kernel as they are:
    bit for bit what casting them to float32 and the output back gives, and its gradient."""
    import keras
    import tensorflow as tf
    from monodepth_tf.networks.sync_batchnorm import batch_norm

    rng = np.random.default_rng(12)
    x = tf.cast(rng.normal(3.0, 2.0, size=(2, 6, 10, 16)), tf.bfloat16)
    w = tf.cast(rng.normal(size=x.shape), tf.bfloat16)
    layer = batch_norm("bf16")
    layer.dtype_policy = keras.DTypePolicy("mixed_bfloat16")  # float32 weights, bf16 compute
    layer.build(x.shape)
    layer.gamma.assign(rng.normal(1.0, 0.5, size=16))
    layer.beta.assign(rng.normal(size=16))

    def through_float32(values):
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            tf.cast(values, tf.float32), layer.gamma, layer.beta, epsilon=1e-5,
            data_format="NHWC", is_training=True)
        return tf.cast(y, tf.bfloat16)

    @tf.function
    def forward_backward(f, values):
        with tf.GradientTape() as tape:
            tape.watch(values)
            y = f(values)
        return y, tape.gradient(y, values, w)

    fast = forward_backward(lambda v: layer(v, training=True), x)
    graph = tf.function(lambda v: layer(v, training=True)).get_concrete_function(x).graph
    assert "Cast" not in {op.type for op in graph.get_operations()
                          if op.inputs and op.inputs[0].dtype == tf.bfloat16}
    for got, expected in zip(fast, forward_backward(through_float32, x)):
        assert got.dtype == tf.bfloat16
        np.testing.assert_array_equal(got.numpy().astype(np.float32),
                                      expected.numpy().astype(np.float32))


def test_instance_keys_never_collide_across_calls_channels_or_directions():
    from monodepth_tf.networks.sync_batchnorm import MAX_CALLS_PER_STEP, instance_key
    keys = [instance_key(call, channels, direction)
            for call in range(0, MAX_CALLS_PER_STEP, 7) for channels in (1, 3, 64, 2048)
            for direction in range(3)]
    assert len(set(keys)) == len(keys)
    assert 0 < min(keys) and max(keys) < 2 ** 31
    with pytest.raises(ValueError, match="synchronized BatchNorm calls"):
        instance_key(MAX_CALLS_PER_STEP, 64, 0)


# ----------------------------------------------------------------------------------------------
# A ResNet encoder run twice per step (as the pose encoder runs on two frame pairs): its
# gradients under two replicas, in three fresh traces, against one device.

def encoder_check(out):
    """Saves the loss, every gradient and the moving statistics of a ResNet-18 pair encoder
    called twice per step, on one device and in REPEATS fresh two-replica traces."""
    import keras
    import tensorflow as tf
    from monodepth_tf.networks.resnet_encoder import ResnetEncoder

    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    frames = rng.uniform(size=(3, GLOBAL_BATCH, HEIGHT, WIDTH, 3)).astype(np.float32)
    # the loss projects each feature map on fixed random weights
    projections = [rng.normal(size=(GLOBAL_BATCH, HEIGHT >> s, WIDTH >> s, c)).astype(np.float32)
                   for s, c in zip(range(1, 6), (64, 64, 128, 256, 512))]
    weights = None
    arrays = {}
    for run, devices in enumerate([["/cpu:0"]] + [["/cpu:0", "/cpu:1"]] * REPEATS):
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            encoder = ResnetEncoder(18, num_input_images=2)
            encoder(tf.zeros([1, HEIGHT, WIDTH, 6]))
        if weights is None:
            weights = [v.numpy() for v in encoder.variables]
        share = GLOBAL_BATCH // len(devices)

        def distribute(order):
            return strategy.experimental_distribute_values_from_function(
                lambda c: [a[order][c.replica_id_in_sync_group * share:][:share]
                           for a in [*frames, *projections]])

        def replica(values):
            images, weights = values[:3], values[3:]
            with tf.GradientTape() as tape:
                features = [encoder(tf.concat([images[i], images[i + 1]], -1), training=True)
                            for i in range(2)]
                loss = sum(tf.reduce_sum(f * w) for pair in features
                           for f, w in zip(pair, weights)) / GLOBAL_BATCH
            return loss, tape.gradient(loss, encoder.trainable_variables)

        step = tf.function(lambda v: strategy.run(replica, args=(v,)))
        total = lambda t: sum(strategy.experimental_local_results(t))  # noqa: E731
        # on one device, the same step with the samples in another order first: float32's floor
        for prefix, order in ([("reordered", [2, 3, 0, 1])] if run == 0 else []) + \
                [(str(run), [0, 1, 2, 3])]:
            for v, value in zip(encoder.variables, weights):
                v.assign(value)
            loss, grads = step(distribute(order))
            arrays[f"{prefix}/loss"] = total(loss).numpy()
            for v, g in zip(encoder.trainable_variables, grads):
                arrays[f"{prefix}/grad/{v.path.split('/', 1)[1]}"] = total(g).numpy()
            for v in encoder.non_trainable_variables:
                arrays[f"{prefix}/stat/{v.path.split('/', 1)[1]}"] = \
                    strategy.experimental_local_results(v.value)[-1].numpy()
    np.savez(out, **arrays)


@pytest.fixture(scope="module")
def encoder_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("encoder") / "encoder.npz"
    run_script("encoder", out)
    return dict(np.load(out))


def relative_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_encoder_gradients_do_not_depend_on_the_trace(encoder_results):
    """In three fresh traces (the tape may walk the backward in a different order in each), two
    replicas give the loss (1e-5 relative: one device runs TensorFlow's fused BatchNorm kernel,
    whose float32 arithmetic differs from the synchronized layer's; measured 2.4e-6 through the
    encoder's 20 normalizations) and moving statistics (1e-5) of one device, and its
    gradient: within 5e-2 (relative L2) in every tensor, and overall within twice float32's
    floor plus 1e-3. The floor is the one-device gradient with the samples in another order: a
    ResNet's float32 gradient is ill-conditioned (a ReLU input within rounding of zero moves a
    whole kernel slice); with this data it is 6e-3 overall and 1.3e-2 in the worst tensor
    (layer4_0, 2x6 positions per sample), while two replicas give 7e-3 and 1.4e-2. Per-replica
    statistics give 0.67 overall, at least 0.32 in every tensor, and statistics 3e-2 off."""
    one = split_results(encoder_results, "0")
    reordered = split_results(encoder_results, "reordered")
    names = [k for k in one if k.startswith("grad/")]
    assert len(names) == 60 and len([k for k in one if k.startswith("stat/")]) == 40
    flat = lambda run: np.concatenate([run[k].ravel() for k in names])  # noqa: E731
    floor = relative_l2(flat(reordered), flat(one))
    assert floor < 2e-2 and all(relative_l2(reordered[k], one[k]) <= 5e-2 for k in names)
    for repeat in range(1, REPEATS + 1):
        two = split_results(encoder_results, str(repeat))
        np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
        for name in names:
            assert relative_l2(two[name], one[name]) <= 5e-2, (name, repeat)
        overall = relative_l2(flat(two), flat(one))
        assert overall <= 2 * floor + 1e-3, (overall, floor, repeat)
        for name in one:
            if name.startswith("stat/"):
                np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6,
                                           err_msg=f"{name}, trace {repeat}")


# ----------------------------------------------------------------------------------------------
# Whole training steps: MirroredStrategy on two logical CPUs against one device.

def trainer_check(world, out):
    """Builds a one-device Trainer and a two-replica Trainer with the same weights; runs two
    steps on two global batches; saves losses and every network variable (weights and
    BatchNorm statistics) after each step."""
    import keras
    import tensorflow as tf
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.splits import read_split
    from monodepth_tf.data.pipeline import PipelineOptions, make_dataset
    from monodepth_tf.losses.options import LossOptions
    from monodepth_tf.config import ModelConfig
    from monodepth_tf.training.step import Trainer

    keras.utils.set_random_seed(11)  # the same initial weights in every run of the test
    frames, scales = (0, -1, 1, "s"), (0,)
    data = make_dataset(KittiRawLayout(world, "png"), read_split(Path(world) / "splits",
                                                                 "synthetic", "train"),
                        PipelineOptions(HEIGHT, WIDTH, frames, scales, seed=3), GLOBAL_BATCH)
    batches = list(data.take(2))
    assert len(batches) == 2
    # the auto-mask tie-breaking noise is drawn per replica by design: off for the comparison
    loss_options = LossOptions(frame_ids=frames, scales=scales, automask_noise=0.0)
    model_config = ModelConfig(frame_ids=frames, scales=scales)

    def variables(trainer):
        return {f"{name}/{v.path.split('/', 1)[1]}": v
                for name, network in trainer.system.networks().items()
                for v in network.variables}

    def steps(trainer, strategy, named, order):
        """Two steps on the batches with samples in ``order``: the losses, the global gradient
        of the first step, and every variable after each step."""
        share = GLOBAL_BATCH // strategy.num_replicas_in_sync
        run = {}
        for step, batch in enumerate(batches):
            batch = tf.nest.map_structure(lambda t: tf.gather(t, order), batch)
            distributed = strategy.experimental_distribute_values_from_function(
                lambda c: tf.nest.map_structure(
                    lambda t: t[c.replica_id_in_sync_group * share:][:share], batch))
            result = trainer.train_step(distributed)
            run[f"loss/{step}"] = result.total.numpy()
            if step == 0:  # Adam's first moment after one step is 0.1 * the global gradient
                momentums = [v for v in trainer.optimizer.variables
                             if v.path.endswith("_momentum")]
                keys = {id(v): key for key, v in named.items()}
                for v, momentum in zip(trainer.variables, momentums):
                    run[f"gradient/{keys[id(v)]}"] = momentum.numpy() / 0.1
            for key, v in named.items():
                copies = [c.numpy() for c in strategy.experimental_local_results(v.value)]
                for copy in copies[1:]:  # mirrored copies stay identical
                    np.testing.assert_array_equal(copy, copies[0], err_msg=key)
                run[f"{key}/{step}"] = copies[0]
        return run

    def summary(prefix, run, reference):
        """What the tests need of a run (the full variables would take 100 MB each): losses,
        BatchNorm statistics after the first step, and how it differs from ``reference``."""
        saved = {f"{prefix}/loss/{step}": run[f"loss/{step}"] for step in range(2)}
        saved.update({f"{prefix}/{k}/0": run[f"{k}/0"] for k in named if "moving_" in k})
        if reference is not None:
            gradients = [k for k in run if k.startswith("gradient/")]
            difference = np.sqrt(sum(np.sum((run[k] - reference[k]) ** 2.0) for k in gradients))
            size = np.sqrt(sum(np.sum(reference[k] ** 2.0) for k in gradients))
            saved[f"{prefix}/gradient_error"] = difference / size
            for step in range(2):
                names = [f"{k}/{step}" for k in named]
                off = sum(int((np.abs(run[k] - reference[k]) > 1e-5).sum()) for k in names)
                saved[f"{prefix}/off/{step}"] = off / sum(run[k].size for k in names)
        return saved

    arrays, one = {}, None
    for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
        strategy = tf.distribute.MirroredStrategy(devices)
        trainer = Trainer(strategy, model_config, loss_options, learning_rate=1e-4)
        named = variables(trainer)
        if one is None:
            initial = {k: v.numpy() for k, v in named.items()}
            arrays["variables"] = len(initial)
            start = trainer.checkpoint().write(str(Path(out).with_suffix(".start")))
            one = steps(trainer, strategy, named, [0, 1, 2, 3])
            arrays.update(summary("1", one, None))
            for step in range(2):
                arrays[f"1/moved/{step}"] = np.mean(
                    [not np.array_equal(one[f"{k}/{step}"], initial[k]) for k in named])
            # float32's floor: the same steps with the samples in another order (the same
            # mathematics, other rounding), from the same weights and a fresh Adam
            trainer.checkpoint().read(start).assert_consumed()
            arrays.update(summary("reordered", steps(trainer, strategy, named, [2, 3, 0, 1]),
                                  one))
        else:
            for key, v in named.items():
                v.assign(initial[key])
            arrays.update(summary("2", steps(trainer, strategy, named, [0, 1, 2, 3]), one))
    np.savez(out, **arrays)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from monodepth_tf.synthetic import make_synthetic_kitti
    root = tmp_path_factory.mktemp("world")
    make_synthetic_kitti(root, seed=2, num_drives=1, frames_per_drive=14, height=HEIGHT,
                         width=WIDTH)
    return root


@pytest.fixture(scope="module")
def trainer_results(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("trainer") / "trainer.npz"
    run_script("trainer", world, out)
    return dict(np.load(out))


def split_results(results, prefix):
    return {k[len(prefix) + 1:]: v for k, v in results.items() if k.startswith(prefix + "/")}


def test_two_replicas_take_the_same_steps_as_one_device(trainer_results):
    """Two steps of mono_stereo ResNet-18 training (scale 0) at 64x192, global batch 4, on
    MirroredStrategy over two logical CPUs (two samples each) and on one device from the same
    weights.

    What float32 allows: the forward pass is well conditioned, so the first loss and the
    BatchNorm moving statistics after the first step agree to 1e-6 relative / 1e-5 absolute.
    The gradient is not: ReLU inputs and per-pixel minima (warped frames against each other and
    the identity, nearly tied at initialization) within rounding of a switch, and BatchNorm's
    backward subtracting nearly equal sums, move it by ~1e-3 (relative L2) when only the
    rounding changes. Adam's first
    step is about ``lr * sign(gradient)`` per weight, so weights whose gradient is within that
    noise of zero may end up to 2e-4 apart. Hence: the global gradient within 1e-2 (relative L2),
    all but 1e-3 of the weights within 1e-5 after the first step (5e-2 after the second, whose
    gradients carry the first step's differences), the second loss within 2e-5 relative. The
    one-device run repeated with each batch's samples in another order (same mathematics, other
    rounding) must meet the same bounds: they are float32's floor, not a loose guess.

    Measured: two replicas 0 and 8e-8 (losses), 2.4e-7 (statistics), 6.5e-4 (gradient), 8e-6
    and 1.7e-3 (weights off); the reordered floor 8e-8, 8e-7, 1.8e-7, 1.3e-3, 2.5e-5, 3.9e-3.
    Per-replica BatchNorm statistics (Keras' default, measured once on this data): first loss
    4e-4 relative off, statistics 5e-2 off, gradient 0.58, 33% of the weights off by > 1e-5.
    """
    one = split_results(trainer_results, "1")
    statistics = [k for k in one if "moving_" in k]
    assert trainer_results["variables"] > 200
    assert len(statistics) == 2 * 2 * 20  # 20 BatchNorm layers in each of the two encoders
    assert one["moved/0"] > 0.95 and one["moved/1"] > 0.95  # the steps changed the variables
    for prefix in ("2", "reordered"):
        run = split_results(trainer_results, prefix)
        for step, loss_tolerance in ((0, 1e-6), (1, 2e-5)):
            np.testing.assert_allclose(run[f"loss/{step}"], one[f"loss/{step}"],
                                       rtol=loss_tolerance, err_msg=f"{prefix}: loss {step}")
        for key in statistics:
            np.testing.assert_allclose(run[key], one[key], rtol=0, atol=1e-5,
                                       err_msg=f"{prefix}: {key}")
        error = float(run["gradient_error"])
        assert error <= 1e-2, f"{prefix}: gradient off by {error:.2e} (relative L2)"
        for step, allowed in ((0, 1e-3), (1, 5e-2)):
            fraction = float(run[f"off/{step}"])
            assert fraction <= allowed, \
                f"{prefix}: {fraction:.2e} of the values off by > 1e-5 after step {step}"


# ----------------------------------------------------------------------------------------------
# A training run's input on two replicas: one iterator across an epoch's end.

def run_input_check(world, out):
    """A Run over two logical CPUs reads steps ``spe - 1 .. spe + 1`` (the last of epoch 0, the
    first two of epoch 1) through one iterator; saves each replica's images per step, and
    make_dataset's per-replica batches of epochs 0 and 1 alone."""
    import tensorflow as tf
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.pipeline import make_dataset
    from monodepth_tf.data.splits import read_split
    from monodepth_tf.training.loop import DataSource, Run
    from monodepth_tf.training.options import TrainOptions

    options = TrainOptions(data_path=str(world), split="synthetic", png=True, height=HEIGHT,
                           width=WIDTH, batch_size=GLOBAL_BATCH, weights_init="scratch",
                           log_dir=str(Path(out).parent), model_name="input").validate()
    layout = KittiRawLayout(world, "png")
    train = read_split(Path(world) / "splits", "synthetic", "train")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    run = Run(options, DataSource(layout, train, []), strategy=strategy)
    per_epoch = run.steps_per_epoch
    saved = {"steps_per_epoch": per_epoch}
    batches = iter(run._dataset(per_epoch - 1, per_epoch + 2))
    for step in range(3):
        local = strategy.experimental_local_results(next(batches).color_aug["0"])
        for replica, images in enumerate(local):
            saved[f"run/{step}/{replica}"] = images.numpy()
    for epoch in (0, 1):
        alone = make_dataset(layout, train, run.pipeline, GLOBAL_BATCH // 2, epoch=epoch)
        for i, batch in enumerate(alone):
            saved[f"alone/{epoch}/{i}"] = batch.color_aug["0"].numpy()
    np.savez(out, **saved)


def test_two_replicas_read_a_run_through_one_iterator(world, tmp_path):
    """Across an epoch's end, replica r of step k gets make_dataset's per-replica batch
    2k + r of that step's epoch, as when each epoch had its own iterator."""
    out = tmp_path / "input.npz"
    run_script("run_input", world, out)
    saved = dict(np.load(out))
    per_epoch = int(saved["steps_per_epoch"])
    assert per_epoch >= 2
    for step, (epoch, index) in enumerate([(0, per_epoch - 1), (1, 0), (1, 1)]):
        for replica in (0, 1):
            np.testing.assert_array_equal(saved[f"run/{step}/{replica}"],
                                          saved[f"alone/{epoch}/{2 * index + replica}"],
                                          err_msg=f"step {step}, replica {replica}")
    assert not np.array_equal(saved["alone/0/0"], saved["alone/1/0"])  # two epochs, two orders


# ----------------------------------------------------------------------------------------------

if __name__ == "__main__":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    task, *arguments = sys.argv[1:]
    {"layer": layer_check, "encoder": encoder_check, "trainer": trainer_check,
     "run_input": run_input_check}[task](*arguments)
    print(json.dumps({"done": task}))
