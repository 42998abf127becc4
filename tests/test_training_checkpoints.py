"""monodepth_tf.training.checkpoints: a run's checkpoints, its best abs_rel and its weight
folders, through RunCheckpoints' public methods."""

import json

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.config import JSON_FIELDS, ModelConfig
from monodepth_tf.losses.options import LossOptions
from monodepth_tf.training.checkpoints import RunCheckpoints
from monodepth_tf.training.step import Trainer
from monodepth_tf.weights.folder import NonFiniteWeightsError, load_networks

STEREO = (0, "s")


def stereo_trainer() -> Trainer:
    return Trainer(tf.distribute.OneDeviceStrategy("/cpu:0"),
                   ModelConfig(frame_ids=STEREO, scales=(0,)),
                   LossOptions(frame_ids=STEREO, scales=(0,)))


def test_best_abs_rel_only_moves_down():
    checkpoints = RunCheckpoints("unused", stereo_trainer(),
                                 ModelConfig(scales=(0,), pose_model_type=None))
    assert [checkpoints.is_new_best(v) for v in (0.3, 0.4, 0.3, 0.2)] == [True, False, False,
                                                                          True]
    assert float(checkpoints.best_abs_rel.numpy()) == 0.2


def test_a_checkpoint_restores_every_variable_and_a_weight_folder_loads(tmp_path):
    config = ModelConfig(height=64, width=96, scales=(0,), frame_ids=STEREO,
                         pose_model_type=None)
    trainer = stereo_trainer()
    saved = RunCheckpoints(tmp_path, trainer, config)
    saved.epoch.assign(3)
    saved.is_new_best(0.25)
    saved.save(step=7)
    expected = [v.numpy() for v in saved.variables()]
    for variable in trainer.system.depth.trainable_variables:
        variable.assign(tf.zeros_like(variable))
    saved.epoch.assign(0)
    restored = RunCheckpoints(tmp_path, trainer, config)
    assert restored.latest.endswith("ckpt-7") and restored.restore_latest()
    assert len(expected) == len(restored.variables()) > 100
    for before, after in zip(expected, restored.variables()):
        np.testing.assert_array_equal(before, after.numpy())

    folder = saved.save_weights("weights_best", {"epoch": 3})
    written = json.loads((folder / "config.json").read_text())
    assert list(written) == [*JSON_FIELDS, "epoch", "step"]
    assert (written["height"], written["pose_model_type"], written["epoch"]) == (64, None, 3)
    loaded, depth, pose = load_networks(folder)
    assert loaded == ModelConfig.from_json(folder / "config.json") and pose is None
    image = tf.random.stateless_uniform([1, 64, 96, 3], seed=[1, 2])
    np.testing.assert_array_equal(depth(image, training=False)[0].numpy(),
                                  trainer.system.depth(image, training=False)[0].numpy())


def first_variable(network, part: str):
    """The first variable of ``network`` whose path contains ``part``."""
    return next(v for v in network.variables if part in v.path)


@pytest.mark.parametrize("part,value", [("moving_variance", np.nan), ("kernel", np.inf)])
def test_non_finite_variables_are_never_written(tmp_path, part, value):
    """A NaN BatchNorm statistic (not trainable) or an infinite kernel: no weights folder, no
    checkpoint, the refusal naming the variable; nothing left behind."""
    config = ModelConfig(scales=(0,), frame_ids=STEREO, pose_model_type=None)
    trainer = stereo_trainer()
    checkpoints = RunCheckpoints(tmp_path, trainer, config)
    checkpoints.save(step=1)
    variable = first_variable(trainer.system.depth.encoder, part)
    assert variable.trainable == (part == "kernel")
    broken = variable.numpy()
    broken.flat[5] = value
    variable.assign(broken)
    with pytest.raises(NonFiniteWeightsError) as raised:
        checkpoints.save_weights("weights_final")
    assert str(raised.value) == (
        f"refusing to write weights folder {tmp_path / 'models' / 'weights_final'}: 1 "
        f"variable(s) hold NaN or infinity ({variable.path})")
    with pytest.raises(NonFiniteWeightsError, match=f"refusing to write checkpoint 2 of "
                                                    f"{tmp_path}: 1 variable"):
        checkpoints.save(step=2)
    assert not (tmp_path / "models").exists()
    assert checkpoints.latest.endswith("ckpt-1")
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]
