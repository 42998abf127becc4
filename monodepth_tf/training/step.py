"""The training step: the networks, the loss and Adam, run by a tf.distribute strategy.

Each replica computes the loss of its share of the global batch, divided by the number of
replicas, so that the gradients the strategy sums are those of the global batch's mean loss;
BatchNorm statistics (mean, variance, their gradient and the moving averages) are those of the
global batch (see monodepth_tf.networks.sync_batchnorm). N devices therefore compute the same
update as one device on the same global batch, up to float32 rounding; only the auto-mask's
tie-breaking noise differs, as it is drawn per replica.

XLA does not compile the collectives of synchronized BatchNorm on CPU: with ``jit_compile`` and
more than one replica only the loss (geometry, warping, SSIM) is compiled, the networks run
without XLA.
"""

from typing import Callable, Dict, NamedTuple, Optional, Tuple

import keras
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.data.batch import Batch
from monodepth_tf.losses.options import LossOptions, Pose
from monodepth_tf.model import Monodepth2, NetworkOutputs
from monodepth_tf.training.optimizer import FusedAdam
from monodepth_tf.training.schedule import StepDecay

MIXED_PRECISION_POLICIES = {None: "float32", "float16": "mixed_float16",
                            "bfloat16": "mixed_bfloat16"}


class StepResult(NamedTuple):
    """Losses of one step, averaged over the global batch: total and per scale."""

    total: tf.Tensor
    per_scale: Tuple[tf.Tensor, ...]


def as_float32(outputs: NetworkOutputs) -> NetworkOutputs:
    """Network outputs in float32 for the loss (they are float16/bfloat16 under mixed
    precision; the geometry and the loss always compute in float32)."""
    cast = lambda t: tf.cast(t, tf.float32)  # noqa: E731
    return NetworkOutputs(
        disps=[cast(d) for d in outputs.disps],
        poses={k: Pose(cast(p.axisangle), cast(p.translation)) for k, p in outputs.poses.items()},
        masks=[cast(m) for m in outputs.masks])


def restore_grappler_options(previous: Dict[str, object]) -> None:
    """Puts grappler's process-wide options back to ``previous`` (a
    ``tf.config.optimizer.get_experimental_options()`` snapshot): options set since then that
    ``previous`` does not hold go back to TensorFlow's defaults."""
    current = tf.config.optimizer.get_experimental_options()
    options: Dict[str, object] = {key: None for key in current if key not in previous}
    options.update(previous)
    tf.config.optimizer.set_experimental_options(options)


def keep_graph_arithmetic() -> Callable[[], None]:
    """Stops grappler from rewriting the step's float arithmetic; process-wide, to call before
    the first step is traced (the Trainer does). Returns a function that puts the options
    back as they were (for tests and for programs that trace other graphs afterwards).

    Two of TensorFlow's graph optimizations change roundings: constant folding turns ``x / c``
    into ``x * (1 / c)`` and ``1 / x`` into an approximate Reciprocal, and the arithmetic
    optimizer regroups sums of differently shaped terms. Inside the training step they moved
    6-20% of the sampling grid an ulp away from what eager TensorFlow and the original compute
    (tests/test_losses.py compares the two bit for bit). Without them the step is also faster
    on the CPU (stereo, batch 4, 192x640: 1.48-1.50 s instead of 1.55).
    """
    previous = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options(
        {"constant_folding": False, "arithmetic_optimization": False})
    return lambda: restore_grappler_options(previous)


class Trainer:
    """Builds the networks and Adam under a strategy and runs distributed training steps.

    Args:
        strategy: the tf.distribute strategy (see
            :func:`monodepth_tf.training.devices.make_strategy`).
        model_config, loss_options: the configuration.
        learning_rate, scheduler_step_size, steps_per_epoch: Adam's step-decay schedule
            (Adam as Keras computes it, in TensorFlow's fused kernel: training.optimizer).
        jit_compile: compile the forward and backward pass with XLA (only the loss's, with
            more than one replica).
        mixed_precision: None, ``"float16"`` (with dynamic loss scaling) or ``"bfloat16"``.

    Creating one calls :func:`keep_graph_arithmetic` (process-wide grappler options).
    """

    def __init__(self, strategy: tf.distribute.Strategy, model_config: ModelConfig,
                 loss_options: LossOptions, learning_rate: float = 1e-4,
                 scheduler_step_size: int = 15, steps_per_epoch: int = 1000,
                 jit_compile: bool = False, mixed_precision: Optional[str] = None):
        if mixed_precision not in MIXED_PRECISION_POLICIES:
            raise ValueError(f"--mixed_precision must be float16 or bfloat16, "
                             f"got {mixed_precision!r}")
        keep_graph_arithmetic()
        self.strategy = strategy
        self.loss_options = loss_options
        keras.config.set_dtype_policy(MIXED_PRECISION_POLICIES[mixed_precision])
        try:
            with strategy.scope():
                self.system = Monodepth2(model_config)
                self.variables = self.system.trainable_variables
                optimizer = FusedAdam(
                    StepDecay(learning_rate, scheduler_step_size, steps_per_epoch))
                if mixed_precision == "float16":
                    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
                self.optimizer = optimizer
                # Keras 3 optimizers must create their slots inside the strategy's scope
                # before the first distributed step.
                self.optimizer.build(self.variables)
        finally:
            keras.config.set_dtype_policy("float32")
        compile_all = jit_compile and strategy.num_replicas_in_sync == 1
        # Training's, validation's, prediction's and pose evaluation's tf.functions and the
        # loader are traced as written (autograph=False): none has Python control flow on
        # tensors, and autograph's conversion of them and of Keras' layers took about 10 s of
        # each bin/train start (a 1-step run: 46 s -> 26 s with the val dataset built once).
        self._gradients = tf.function(self._loss_and_gradients, jit_compile=True,
                                      autograph=False) if compile_all else self._loss_and_gradients
        self._loss = tf.function(self._replica_loss, jit_compile=True, autograph=False) \
            if jit_compile and not compile_all else self._replica_loss
        self._train_step = tf.function(self._distributed_step, autograph=False)

    def _loss_and_gradients(self, batch: Batch):
        with tf.GradientTape() as tape:
            outputs = as_float32(self.system(batch, training=True))
            # tie-breaking noise drawn from (step, replica): reproducible across restarts
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            seed = tf.stack([tf.cast(self.optimizer.iterations, tf.int64) * 1024,
                             tf.cast(replica, tf.int64)])
            losses = self._loss(batch, outputs, seed)
            replica_loss = losses.total / self.strategy.num_replicas_in_sync
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                replica_loss = self.optimizer.scale_loss(replica_loss)
        return losses, tape.gradient(replica_loss, self.variables)

    def _replica_loss(self, batch: Batch, outputs: NetworkOutputs, seed: tf.Tensor):
        return self.system.loss(batch, outputs, self.loss_options, noise_seed=seed)

    def _replica_step(self, batch: Batch) -> StepResult:
        losses, grads = self._gradients(batch)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return StepResult(losses.total, losses.per_scale)

    def _distributed_step(self, batch) -> StepResult:
        per_replica = self.strategy.run(self._replica_step, args=(batch,))
        return tf.nest.map_structure(
            lambda t: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, t, axis=None),
            per_replica)

    def train_step(self, distributed_batch) -> StepResult:
        """One optimization step on a batch from ``strategy.distribute_datasets_from_function``
        (or ``experimental_distribute_dataset``); returns the global batch's mean losses."""
        return self._train_step(distributed_batch)

    @property
    def iterations(self) -> tf.Variable:
        return self.optimizer.iterations

    def checkpoint(self, **extra) -> tf.train.Checkpoint:
        """A checkpoint of every network variable and of the optimizer (plus ``extra``).

        Variables are listed by their Keras path inside their network (stable across
        processes, unlike the networks' auto-numbered names) rather than through the object
        graph: tf.train.Checkpoint does not follow Keras 3 layers kept in nested lists (the
        ResNet stages), and would silently skip their BatchNorm statistics. They are the Keras
        variables themselves, the objects the optimizer tracks too, so that each is written once
        (their underlying ``tf.Variable`` would be a second object: a second copy of every
        weight, a quarter of the file). What is written is what resumption needs: the weights
        and BatchNorm statistics, Adam's step and two moments per weight.
        """
        variables = {f"{name}.{v.path.split('/', 1)[1].replace('/', '.')}": v
                     for name, network in self.system.networks().items()
                     for v in network.variables}
        count = sum(len(n.variables) for n in self.system.networks().values())
        if len(variables) != count:
            raise RuntimeError("network variables with the same path cannot be checkpointed")
        return tf.train.Checkpoint(optimizer=self.optimizer, network_variables=variables,
                                   **extra)
