"""monodepth_tf.training.checkpoints: a run's checkpoints, its best abs_rel and its weight
folders, through RunCheckpoints' public methods."""

import contextlib
import errno
import json
import resource
import shutil
import signal

import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf import files
from monodepth_tf.config import JSON_FIELDS, ModelConfig
from monodepth_tf.download import human_bytes
from monodepth_tf.files import DiskSpaceError, WriteError
from monodepth_tf.losses.options import LossOptions
from monodepth_tf.training.checkpoints import CheckpointWriteError, RunCheckpoints
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


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Files this process writes stop at ``limit`` bytes, with the error a full disk gives a
    writer (EFBIG instead of ENOSPC; SIGXFSZ ignored); restored on exit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def saved_state(checkpoints: RunCheckpoints):
    return [v.numpy().copy() for v in checkpoints.variables()]


def assert_restores(folder, trainer, config, expected, latest_step: int):
    """A fresh RunCheckpoints resumes from checkpoint ``latest_step`` with ``expected``."""
    for variable in trainer.system.depth.trainable_variables:
        variable.assign(tf.zeros_like(variable))
    restored = RunCheckpoints(folder, trainer, config)
    assert restored.latest.endswith(f"ckpt-{latest_step}") and restored.restore_latest()
    for before, after in zip(expected, restored.variables()):
        np.testing.assert_array_equal(before, after.numpy())


def test_a_failed_checkpoint_write_keeps_the_previous_one_at_every_point(tmp_path):
    """A real write error (the file-size limit a full disk would impose) at ten points of the
    data file: each time the error names the checkpoint kept, the partial files are gone, and
    the previous checkpoint restores exactly (10 of 10)."""
    config = ModelConfig(height=64, width=96, scales=(0,), frame_ids=STEREO,
                         pose_model_type=None)
    trainer = stereo_trainer()
    checkpoints = RunCheckpoints(tmp_path, trainer, config)
    checkpoints.save(step=1)
    kept = saved_state(checkpoints)
    size = checkpoints.size_bytes()
    data_file = next((tmp_path / "checkpoints").glob("ckpt-1.data-*"))
    assert size <= data_file.stat().st_size <= size * 1.001
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    for point in range(10):
        limit = size * point // 10 + 1
        for variable in trainer.system.depth.trainable_variables:  # a later state
            variable.assign_add(tf.ones_like(variable))
        with file_size_limit(limit), pytest.raises(CheckpointWriteError) as error:
            checkpoints.save(step=2 + point)
        assert f"checkpoint {2 + point}" in str(error.value)
        assert "File too large" in str(error.value) and "function_node" not in str(error.value)
        assert f"the newest checkpoint, {checkpoints.latest}, is intact" in str(error.value)
        assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    assert_restores(tmp_path, trainer, config, kept, latest_step=1)


def test_a_checkpoint_is_not_started_without_room_for_it(tmp_path, monkeypatch):
    """Free space is checked before writing: too little refuses with the figures, and writes
    nothing; enough (the checkpoint's bytes and the spare margin) writes."""
    config = ModelConfig(height=64, width=96, scales=(0,), frame_ids=STEREO,
                         pose_model_type=None)
    trainer = stereo_trainer()
    checkpoints = RunCheckpoints(tmp_path, trainer, config)
    checkpoints.save(step=1)
    size = checkpoints.size_bytes()
    usage = shutil.disk_usage(tmp_path)

    def disk_with(free):
        monkeypatch.setattr(files.shutil, "disk_usage",
                            lambda path: usage._replace(free=free))

    disk_with(size + files.SPARE_BYTES - 1)
    with pytest.raises(DiskSpaceError) as error:
        checkpoints.save(step=2)
    assert error.value.errno == errno.ENOSPC
    assert f"checkpoint 2 in {tmp_path / 'checkpoints'}" in str(error.value)
    assert f"about {human_bytes(size + files.SPARE_BYTES)}" in str(error.value)
    assert not list((tmp_path / "checkpoints").glob("ckpt-2*"))
    assert checkpoints.latest.endswith("ckpt-1")
    disk_with(files.SPARE_BYTES)  # a weights folder: the networks' weights only
    with pytest.raises(DiskSpaceError, match="weights folder .*weights_best"):
        checkpoints.save_weights("weights_best")
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())
    disk_with(size + files.SPARE_BYTES)
    checkpoints.save(step=3)
    assert checkpoints.latest.endswith("ckpt-3")
    assert_restores(tmp_path, trainer, config, saved_state(checkpoints), latest_step=3)


def test_a_failed_weights_folder_write_leaves_the_folder_as_it_was(tmp_path):
    config = ModelConfig(height=64, width=96, scales=(0,), frame_ids=STEREO,
                         pose_model_type=None)
    trainer = stereo_trainer()
    checkpoints = RunCheckpoints(tmp_path, trainer, config)
    folder = checkpoints.save_weights("weights_best", {"epoch": 0})
    files_before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for variable in trainer.system.depth.trainable_variables:
        variable.assign_add(tf.ones_like(variable))
    with file_size_limit(2**20), pytest.raises(WriteError) as error:
        checkpoints.save_weights("weights_best", {"epoch": 1})
    assert f"writing weights folder {folder} failed" in str(error.value)
    assert f"{folder} is left as it was" in str(error.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files_before
    assert sorted(p.name for p in folder.parent.iterdir()) == ["weights_best"]
