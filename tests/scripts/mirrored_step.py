"""Runs one training step on one device and on two logical CPU devices from the same weights
and the same global batch; prints the losses and the largest weight difference as JSON."""

import json
import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from monodepth_tf.losses import LossOptions  # noqa: E402
from monodepth_tf.system import ModelOptions  # noqa: E402
from monodepth_tf.training import Trainer  # noqa: E402
from tests.test_system import random_batch  # noqa: E402

FRAMES = (0, -1, 1, "s")
jit = "--jit" in sys.argv


def trainer(devices):
    strategy = tf.distribute.MirroredStrategy(devices)
    return Trainer(strategy, ModelOptions(frame_ids=FRAMES),
                   LossOptions(frame_ids=FRAMES, automask_noise=0.0), learning_rate=1e-3,
                   jit_compile=jit)


def all_weights(t):
    return [w for net in t.system.networks().values() for w in net.get_weights()]


def step(t, batch):
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(4)
    distributed = next(iter(t.strategy.experimental_distribute_dataset(dataset)))
    return t.train_step(distributed)


one, two = trainer(["/cpu:0"]), trainer(["/cpu:0", "/cpu:1"])
for name, net in one.system.networks().items():
    two.system.networks()[name].set_weights(net.get_weights())
batch = random_batch(FRAMES, batch=4, seed=3)
results = [step(t, batch) for t in (one, two)]
before = max(float(np.abs(a - b).max()) for a, b in zip(all_weights(one), all_weights(two)))
changed = max(float(np.abs(a - b).max()) for a, b in zip(all_weights(one),
                                                          [w for w in all_weights(two)]))
diff = max(float(np.abs(a - b).max()) for a, b in zip(all_weights(one), all_weights(two)))
start = all_weights(one)
print(json.dumps({
    "loss_one": float(results[0].total), "loss_two": float(results[1].total),
    "per_scale_one": [float(x) for x in results[0].per_scale],
    "per_scale_two": [float(x) for x in results[1].per_scale],
    "max_weight_diff": diff,
    "replicas": two.strategy.num_replicas_in_sync,
}))
if "--debug" in sys.argv:
    wa, wb = all_weights(one), all_weights(two)
    names = [v.path for net in one.system.networks().values() for v in net.weights]
    rows = sorted(((float(np.abs(a-b).max()), n, a.shape) for a, b, n in zip(wa, wb, names)), reverse=True)
    for r in rows[:12]: print(r)
