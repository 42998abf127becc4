"""monodepth_tf.training.checkpoints: a run's checkpoints, its best abs_rel and its weight
folders, through RunCheckpoints' public methods."""

import json

import numpy as np
import tensorflow as tf

from monodepth_tf.config import JSON_FIELDS, ModelConfig
from monodepth_tf.losses.options import LossOptions
from monodepth_tf.training.checkpoints import RunCheckpoints
from monodepth_tf.training.step import Trainer
from monodepth_tf.weights.folder import load_networks

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
