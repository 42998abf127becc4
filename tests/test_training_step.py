"""Training paths no other test covers: the learning-rate drop, mixed precision, XLA, the stop
on a non-finite loss and fine-tuning a chosen set of networks (--models_to_load)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import keras
import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.config import ModelConfig
from monodepth_tf.data.batch import Batch
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.pipeline import PipelineOptions, make_dataset
from monodepth_tf.data.splits import read_split
from monodepth_tf.synthetic import make_synthetic_kitti
from monodepth_tf.losses.options import LossOptions
from monodepth_tf.training.loop import Run, open_data
from monodepth_tf.training.options import TrainOptions
from monodepth_tf.training.schedule import StepDecay
from monodepth_tf.training.step import Trainer
from monodepth_tf.weights.folder import named_parts
from tests.helpers import PROJECT_ROOT

HEIGHT, WIDTH = 64, 192
STEREO_FRAMES, SCALES = (0, "s"), (0,)
STEPS = 10  # steps on one fixed batch
LEARNING_RATE = 1e-4


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    make_synthetic_kitti(root, seed=1, num_drives=1, frames_per_drive=12, height=HEIGHT,
                         width=WIDTH)
    return root


@pytest.fixture(scope="module")
def stereo_batch(world) -> Batch:
    """The first batch (2 samples, no augmentation) of the synthetic world's stereo pairs."""
    data = make_dataset(KittiRawLayout(world, "png"),
                        read_split(world / "splits", "synthetic", "train"),
                        PipelineOptions(HEIGHT, WIDTH, STEREO_FRAMES, SCALES, augment=False,
                                        seed=3), batch_size=2)
    return next(iter(data))


def make_trainer(**options) -> Trainer:
    """A one-device stereo Trainer (depth network only, scale 0), initial weights of seed 5;
    no learning-rate drop within the first 1000 steps."""
    keras.utils.set_random_seed(5)
    return Trainer(tf.distribute.OneDeviceStrategy("/cpu:0"),
                   ModelConfig(frame_ids=STEREO_FRAMES, scales=SCALES),
                   LossOptions(frame_ids=STEREO_FRAMES, scales=SCALES),
                   learning_rate=LEARNING_RATE, scheduler_step_size=1, steps_per_epoch=1000,
                   **options)


def train_losses(trainer: Trainer, batch: Batch, steps: int = STEPS) -> List[float]:
    """The total loss of each of ``steps`` steps on the same batch."""
    return [float(trainer.train_step(batch).total) for _ in range(steps)]


@pytest.fixture(scope="module")
def float32_losses(stereo_batch) -> List[float]:
    return train_losses(make_trainer(), stereo_batch)


# ----------------------------------------------------------------------------------------------
# The learning rate: the original's StepLR, x0.1 every scheduler_step_size epochs.

def test_step_decay_drops_tenfold_every_scheduler_step_size_epochs():
    schedule = StepDecay(1e-3, step_size_epochs=2, steps_per_epoch=5)
    # epochs 0-1 (steps 0-9): 1e-3; epochs 2-3 (steps 10-19): 1e-4; epoch 4: 1e-5; epoch 9: 1e-7
    expected = {0: 1e-3, 9: 1e-3, 10: 1e-4, 19: 1e-4, 20: 1e-5, 49: 1e-7}
    for step, rate in expected.items():
        assert float(schedule(step)) == pytest.approx(rate, rel=1e-6), step


def test_adam_moves_by_the_scheduled_rate_at_each_step():
    """With a constant gradient Adam's bias-corrected step is ``lr * g / (|g| + eps')``: a
    variable falls by the scheduled rate at each step. Epoch = 2 steps, a drop every epoch:
    2 x 1e-3 + 2 x 1e-4 + 2 x 1e-5 = 2.22e-3 after six steps."""
    variable = tf.Variable(1.0, dtype=tf.float64)
    optimizer = keras.optimizers.Adam(StepDecay(1e-3, step_size_epochs=1, steps_per_epoch=2),
                                      epsilon=1e-12)
    positions = [1.0]
    for _ in range(6):
        optimizer.apply_gradients([(tf.constant(1.0, tf.float64), variable)])
        positions.append(float(variable.numpy()))
    moves = -np.diff(positions)
    np.testing.assert_allclose(moves, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5], rtol=1e-5)
    assert 1.0 - positions[-1] == pytest.approx(2.22e-3, rel=1e-5)


def test_trainer_learning_rate_follows_the_epoch_of_its_step():
    """Trainer(learning_rate=1e-4, scheduler_step_size=1, steps_per_epoch=1000): 1e-4 until
    step 999, 1e-5 from step 1000, 1e-6 from step 2000 (the optimizer's iteration count)."""
    trainer = make_trainer()
    for step, rate in ((0, 1e-4), (999, 1e-4), (1000, 1e-5), (1999, 1e-5), (2000, 1e-6)):
        trainer.iterations.assign(step)
        assert float(trainer.optimizer.learning_rate) == pytest.approx(rate, rel=1e-6), step


# ----------------------------------------------------------------------------------------------
# --mixed_precision and --jit_compile, against the float32, non-XLA step.

def assert_training(losses: List[float]) -> None:
    """Finite losses whose last three average at least 1.5% below the first three (float32
    on this batch: 3.6% below)."""
    assert np.isfinite(losses).all(), losses
    assert np.mean(losses[-3:]) < 0.985 * np.mean(losses[:3]), losses


def test_float32_steps_train(float32_losses):
    assert_training(float32_losses)


@pytest.mark.parametrize("precision,first_step_rtol", [("float16", 1e-3), ("bfloat16", 5e-3)])
def test_mixed_precision_steps_train(stereo_batch, float32_losses, precision, first_step_rtol):
    """Networks compute in float16/bfloat16 with float32 variables; the first loss (same
    weights) is within rounding of float32's (measured: 1e-6 and 6e-4 relative) and the loss
    falls over the steps. float16 scales the loss (Keras's LossScaleOptimizer)."""
    trainer = make_trainer(mixed_precision=precision)
    assert keras.config.dtype_policy().name == "float32"  # the Trainer put the policy back
    conv = trainer.system.depth.encoder.conv1
    assert conv.compute_dtype == precision and conv.kernel.dtype == "float32"
    is_scaled = isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert is_scaled == (precision == "float16")
    losses = train_losses(trainer, stereo_batch)
    assert_training(losses)
    assert losses[0] == pytest.approx(float32_losses[0], rel=first_step_rtol)


def test_xla_step_gives_the_losses_of_the_plain_step(stereo_batch, float32_losses):
    """The whole step compiled by XLA (one replica) from the same weights: the first loss
    within 1e-5 relative of the plain step's (measured 1e-6), the first ten within 1e-3
    (measured 1e-4: the weights drift apart by float32 rounding, which Adam amplifies)."""
    losses = train_losses(make_trainer(jit_compile=True), stereo_batch)
    assert losses[0] == pytest.approx(float32_losses[0], rel=1e-5)
    np.testing.assert_allclose(losses, float32_losses, rtol=1e-3)
    assert_training(losses)


def two_replica_losses(world: str) -> Dict[str, List[float]]:
    """In a process with two logical CPUs: three steps of a two-replica Trainer, with and
    without --jit_compile (with two replicas XLA compiles the loss only), on the stereo batch
    split between the replicas. Prints ``{"plain": [...], "xla": [...]}``."""
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    data = make_dataset(KittiRawLayout(world, "png"),
                        read_split(Path(world) / "splits", "synthetic", "train"),
                        PipelineOptions(HEIGHT, WIDTH, STEREO_FRAMES, SCALES, augment=False,
                                        seed=3), batch_size=2)
    batch = next(iter(data))
    losses = {}
    for name, jit in (("plain", False), ("xla", True)):
        keras.utils.set_random_seed(5)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        trainer = Trainer(strategy, ModelConfig(frame_ids=STEREO_FRAMES, scales=SCALES),
                          LossOptions(frame_ids=STEREO_FRAMES, scales=SCALES),
                          learning_rate=LEARNING_RATE, jit_compile=jit)
        distributed = strategy.experimental_distribute_values_from_function(
            lambda context: tf.nest.map_structure(
                lambda t: t[context.replica_id_in_sync_group:][:1], batch))
        losses[name] = [float(trainer.train_step(distributed).total) for _ in range(3)]
    return losses


def test_xla_loss_with_two_replicas_gives_the_losses_of_the_plain_step(world):
    """Two replicas: the networks run without XLA, the loss compiled. The first loss within
    1e-5 relative of the plain two-replica step's, the first three within 1e-3."""
    result = subprocess.run([sys.executable, __file__, str(world)], capture_output=True,
                            text=True, timeout=900, cwd=PROJECT_ROOT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                                 "PYTHONPATH": str(PROJECT_ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    assert np.isfinite(losses["plain"]).all() and len(losses["xla"]) == 3
    assert losses["xla"][0] == pytest.approx(losses["plain"][0], rel=1e-5)
    np.testing.assert_allclose(losses["xla"], losses["plain"], rtol=1e-3)


# ----------------------------------------------------------------------------------------------
# Whole runs: the non-finite loss stop and --models_to_load.

def run_options(world: Path, log_dir: Path, name: str, **changes) -> TrainOptions:
    """Mono training on the synthetic world at 64x192, batch 2, from scratch."""
    return TrainOptions(data_path=str(world), split_dir=str(world / "splits"),
                        split="synthetic", png=True, height=HEIGHT, width=WIDTH, batch_size=2,
                        weights_init="scratch", frame_ids=(0, -1, 1), scales=SCALES,
                        log_dir=str(log_dir), model_name=name, **changes).validate()


def test_a_non_finite_loss_stops_the_run_keeping_the_last_good_checkpoint(world, tmp_path):
    """--learning_rate=1e30: Adam's first step moves every weight by ~1e30, and the second
    step's loss is NaN. The run stops there with exit status 1, names the last checkpoint
    (that of step 1: finite values) and writes no final weights."""
    command = [sys.executable, str(PROJECT_ROOT / "bin" / "train"), "--mode=stereo",
               "--data_path", str(world), "--split_dir", str(world / "splits"),
               "--split", "synthetic", "--png", "--height", str(HEIGHT), "--width", str(WIDTH),
               "--batch_size", "2", "--weights_init", "scratch", "--scales", "0",
               "--learning_rate", "1e30", "--log_dir", str(tmp_path), "--model_name", "run",
               "--num_epochs", "1", "--max_steps", "4", "--save_steps", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "non-finite loss" in result.stdout
    run = tmp_path / "run"
    log = (run / "train.log").read_text()
    assert "step 1/4 loss" in log and "step 2/4" not in log
    assert f"the last good checkpoint is {run / 'checkpoints' / 'ckpt-1'}" in log
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-1")
    reader = tf.train.load_checkpoint(str(run / "checkpoints" / "ckpt-1"))
    values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    assert int(values["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == 1
    # every float but the best val abs_rel so far (infinite until a validation)
    floats = [v for k, v in values.items()
              if np.asarray(v).dtype.kind == "f" and not k.startswith("best_abs_rel")]
    assert len(floats) > 100 and all(np.isfinite(v).all() for v in floats)
    assert max(float(np.abs(v).max()) for v in floats) > 1e29  # the first step did move
    assert not (run / "models" / "weights_final").exists()


def part_weights(run: Run) -> Dict[str, List[np.ndarray]]:
    """``{encoder, depth, pose_encoder, pose: [arrays]}`` of a Run's networks."""
    parts = named_parts(run.system.depth, run.system.pose)
    return {name: [v.numpy() for v in network.weights] for name, network in parts.items()}


def same(a: List[np.ndarray], b: List[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_models_to_load_loads_only_the_named_networks(world, tmp_path):
    """A weights folder of a seed-1 run; a seed-0 run loading ``encoder`` and ``pose`` from it
    holds those two, while its depth decoder and pose encoder keep the seed-0 initialization
    (equal to a seed-0 run that loads nothing)."""
    source_options = run_options(world, tmp_path, "source", seed=1)
    source = Run(source_options, open_data(source_options))
    source.initialize()
    folder = source.save_weights("weights_0")
    saved = part_weights(source)
    fresh_options = run_options(world, tmp_path, "fresh", seed=0)
    fresh = part_weights(Run(fresh_options, open_data(fresh_options)))
    for name in saved:  # the two initializations differ everywhere, so the test can tell
        assert not same(saved[name], fresh[name]), name
    options = run_options(world, tmp_path, "tuned", seed=0, load_weights_folder=str(folder),
                          models_to_load=("encoder", "pose"))
    tuned_run = Run(options, open_data(options))
    tuned_run.initialize()
    tuned = part_weights(tuned_run)
    assert same(tuned["encoder"], saved["encoder"]) and same(tuned["pose"], saved["pose"])
    assert same(tuned["depth"], fresh["depth"])
    assert same(tuned["pose_encoder"], fresh["pose_encoder"])
    assert "loaded encoder, pose from" in (tmp_path / "tuned" / "train.log").read_text()


if __name__ == "__main__":
    print(json.dumps(two_replica_losses(sys.argv[1])))
