"""bin/train: options, a run on the synthetic world, and resumption after SIGKILL."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import time
from unittest import mock

import cv2
import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.synthetic import make_synthetic_kitti
from monodepth_tf.training.options import OptionsError, TrainOptions
from monodepth_tf.weights.folder import load_networks
from tests.helpers import PROJECT_ROOT, train_command
from tests.helpers import TRAIN_ENV as ENV


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    make_synthetic_kitti(root, seed=1, num_drives=1, frames_per_drive=12, height=64, width=192)
    return root


@pytest.mark.parametrize("change,message", [
    (dict(height=100), "--height=100 must be a positive multiple of 32"),
    (dict(frame_ids=(0, -1, "s")), "--frame_ids names 's' but --use_stereo is off"),
    (dict(frame_ids=(0,)), "--frame_ids=0 leaves no source frame"),
    (dict(predictive_mask=True), "--predictive_mask requires --disable_automasking"),
    (dict(pose_model_type="lstm"), "--pose_model_type=lstm is not one of"),
    (dict(scales=(0, 2)), "--scales must be 0, 0 1, 0 1 2 or 0 1 2 3"),
])
def test_contradictory_options_are_rejected_naming_the_flag(change, message):
    with pytest.raises(OptionsError, match=message):
        TrainOptions(**change).validate()


def test_mode_presets_and_cli_rejections(world, tmp_path):
    stereo = subprocess.run(train_command(world, tmp_path, "--mode=stereo", "--nouse_stereo"),
                            capture_output=True, text=True, timeout=300, env=ENV)
    assert stereo.returncode == 2
    assert "--mode=stereo needs stereo frames" in stereo.stderr
    missing = subprocess.run(train_command(world, tmp_path, "--split", "eigen_nowhere"),
                             capture_output=True, text=True, timeout=300, env=ENV)
    assert missing.returncode == 2 and "--split=eigen_nowhere: no folder" in missing.stderr
    assert not (tmp_path / "run").exists()  # rejected before anything was written


def test_run_writes_checkpoints_logs_options_and_loadable_weights(world, tmp_path):
    result = subprocess.run(train_command(world, tmp_path, "--max_steps", "3"),
                            capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    options = json.loads((run / "opt.json").read_text())
    assert options["frame_ids"] == [0, -1, 1] and options["use_stereo"] is True
    log = (run / "train.log").read_text()
    assert "step 3/3 loss" in log
    # scalars every --log_frequency (250) steps and at the first and the last: steps 1 and 3,
    # the losses averaged over the steps since the last write (step 1: its own loss)
    tags = ("loss", "loss/0", "loss/3", "learning_rate", "samples_per_s")
    scalars = {tag: {} for tag in tags}
    for path in (run / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag in scalars:
                    scalars[value.tag][event.step] = float(tf.make_ndarray(value.tensor))
    for tag in tags:
        assert sorted(scalars[tag]) == [1, 3], tag
    logged = float(re.search(r"step 1/3 loss (\S+)", log).group(1))
    assert scalars["loss"][1] == pytest.approx(logged, abs=5e-6)
    assert scalars["learning_rate"][3] == pytest.approx(1e-3)
    config, depth, pose = load_networks(run / "models" / "weights_final")
    assert (config.height, config.width) == (64, 192) and pose is not None
    umask = os.umask(0)
    os.umask(umask)
    assert (run / "models" / "weights_final").stat().st_mode & 0o777 == 0o777 & ~umask


def final_checkpoint_values(run_dir):
    """``{name: array}`` of a run's newest checkpoint: networks, BatchNorm statistics, Adam's
    step and moments, epoch and best val abs_rel (not the manager's count of saves)."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir / "checkpoints")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.startswith("save_counter")}


def test_killed_run_resumes_with_the_weights_of_an_uninterrupted_run(world, tmp_path):
    """SIGKILL inside a checkpoint's write (its data written to TensorFlow's temporary shard,
    not yet merged: tests/pausing_train.py holds the run there) leaves the previous checkpoint
    as the newest and no half-written weights; the restart continues at that step and, with
    --deterministic, ends at step 5 with every checkpointed value bitwise equal to an
    uninterrupted run's (which runs meanwhile, beside it). benchmarks/kill_resume.py kills a
    run at ten such points in turn.

    Measured without --deterministic: two uninterrupted runs of this command differ in nearly
    every checkpoint value (705 of 709 when checkpoints held each weight twice), trainable
    weights by up to 3e-3 and BatchNorm moving variances by up to 0.26 (see
    monodepth_tf.training.devices.make_deterministic for the cause)."""
    steps = ("--max_steps", "5", "--num_epochs", "2", "--deterministic")
    errors = tmp_path / "uninterrupted.stderr"
    with errors.open("w") as stderr:
        uninterrupted = subprocess.Popen(train_command(world, tmp_path / "uninterrupted", *steps),
                                         stdout=subprocess.DEVNULL, stderr=stderr, env=ENV)
    run_dir = tmp_path / "killed" / "run"
    command = train_command(world, tmp_path / "killed", *steps)
    marker = tmp_path / "paused"
    process = subprocess.Popen(
        [command[0], str(PROJECT_ROOT / "tests" / "pausing_train.py"), *command[2:]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(ENV, MONODEPTH_PAUSE="shards:3", MONODEPTH_PAUSE_MARKER=str(marker)))
    checkpoints = run_dir / "checkpoints"
    deadline = time.time() + 600
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert marker.read_text() == "shards:3"
    assert (checkpoints / "ckpt-3_temp").is_dir() and not (checkpoints / "ckpt-3.index").exists()
    assert not (run_dir / "models" / "weights_final").exists()
    latest = tf.train.latest_checkpoint(str(checkpoints))
    killed_at = int(latest.rsplit("-", 1)[1])
    assert killed_at == 2
    assert tf.train.load_variable(latest, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") \
        == killed_at

    resumed = subprocess.run(command,
                             capture_output=True, text=True, timeout=600, env=ENV)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    assert f"resumed from {latest} at epoch 0, step {killed_at}" in log
    after_resume = log[log.index(f"resumed from {latest}"):]
    assert "step 5/5" in after_resume
    final = tf.train.latest_checkpoint(str(checkpoints))
    assert tf.train.load_variable(final, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 5
    assert (run_dir / "models" / "weights_final" / "config.json").exists()

    assert uninterrupted.wait(timeout=600) == 0, errors.read_text()[-3000:]
    resumed_values = final_checkpoint_values(run_dir)
    reference = final_checkpoint_values(tmp_path / "uninterrupted" / "run")
    assert sorted(resumed_values) == sorted(reference)
    for kind in ("moving_variance", "optimizer/_variables/", "depth..encoder", "pose"):
        assert any(kind in name for name in reference), kind  # the whole state is compared
    assert reference["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"] == 5
    for name, value in reference.items():
        np.testing.assert_array_equal(resumed_values[name], value, err_msg=name)


def test_checkpoint_restores_networks_and_adam_exactly(world, tmp_path):
    """In process: what a checkpoint saves, a fresh run restores bit for bit (weights, BatchNorm
    statistics, Adam's moments and step)."""
    from monodepth_tf.training.options import TrainOptions
    from monodepth_tf.training.loop import DataSource, Run
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.splits import read_split

    options = TrainOptions(data_path=str(world), split="synthetic", png=True, height=64,
                           width=192, batch_size=2, weights_init="scratch", use_stereo=True,
                           log_dir=str(tmp_path), model_name="inproc", max_steps=2,
                           learning_rate=1e-3).validate()
    data = DataSource(KittiRawLayout(world, "png"), read_split(world / "splits", "synthetic",
                                                               "train"), [])
    first = Run(options, data)
    assert first.train() == "done"
    saved = [v.numpy() for v in first.checkpoints.variables()]
    second = Run(options, data)
    second.initialize()
    restored = [v.numpy() for v in second.checkpoints.variables()]
    assert len(saved) == len(restored) > 400
    for a, b in zip(saved, restored):
        np.testing.assert_array_equal(a, b)


def test_resumed_epoch_sees_the_batches_an_uninterrupted_epoch_would(world, tmp_path):
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.splits import read_split
    from monodepth_tf.data.pipeline import PipelineOptions, make_dataset

    layout = KittiRawLayout(world, "png")
    entries = read_split(world / "splits", "synthetic", "train")
    options = PipelineOptions(64, 192, (0, -1, 1, "s"), seed=4)
    whole = [b.color_aug["0"].numpy() for b in make_dataset(layout, entries, options, 2, epoch=3)]
    tail = [b.color_aug["0"].numpy() for b in
            make_dataset(layout, entries, options, 2, epoch=3).skip(2)]
    assert len(whole) == len(tail) + 2
    for a, b in zip(whole[2:], tail):
        np.testing.assert_array_equal(a, b)
    other_epoch = next(iter(make_dataset(layout, entries, options, 2, epoch=4)))
    assert not np.array_equal(other_epoch.color_aug["0"].numpy(), whole[0])


def test_one_device_reads_its_epochs_through_one_iterator_without_an_autotuning_model(
        world, tmp_path):
    """Destroying an epoch's iterator waited for tf.data's autotuning thread (asleep for up to
    a minute; the demo stood idle 92 s of 312): the training and validation datasets run
    without it, on one device the replica reads the pipeline itself, not through a
    MultiDeviceIterator, whose per-device datasets keep it on, and a run reads all its epochs
    through one iterator. Its batches are make_dataset's epoch by epoch (here from the second
    batch of epoch 2, as a resumed run reads them, across the end of that epoch)."""
    from monodepth_tf.data.pipeline import make_dataset, make_validation_dataset

    run = nan_run(world, tmp_path, "autotune", [])
    layout, train = run.data.layout, run.data.train
    assert make_dataset(layout, train, run.pipeline, 2).options().autotune.enabled is False
    assert make_validation_dataset(layout, train[:1], run.pipeline,
                                   1).options().autotune.enabled is False
    options = run._input_options()
    assert options.experimental_replication_mode == \
        tf.distribute.InputReplicationMode.PER_REPLICA
    assert options.experimental_fetch_to_device is False
    per_epoch = run.steps_per_epoch
    distributed = list(run._dataset(2 * per_epoch + 1, 4 * per_epoch))
    expected = list(make_dataset(layout, train, run.pipeline, 2, epoch=2).skip(1)) + \
        list(make_dataset(layout, train, run.pipeline, 2, epoch=3))
    assert len(distributed) == len(expected) == 2 * per_epoch - 1
    for batch, alone in zip(distributed, expected):
        got = run.strategy.experimental_local_results(batch.color_aug["0"])
        assert len(got) == 1
        np.testing.assert_array_equal(got[0].numpy(), alone.color_aug["0"].numpy())
    # two replicas keep the default (a MultiDeviceIterator splits each batch between them)
    run.strategy = mock.Mock(spec=tf.distribute.MirroredStrategy, num_replicas_in_sync=2)
    assert run._input_options() is None


def test_consecutive_epochs_are_each_as_alone(world):
    """make_dataset(epochs=n): each epoch in its own order, its remainder dropped, so that no
    batch spans two epochs; the same with an input pipeline's shard."""
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.splits import read_split
    from monodepth_tf.data.pipeline import PipelineOptions, make_dataset

    layout = KittiRawLayout(world, "png")
    entries = read_split(world / "splits", "synthetic", "train")
    options = PipelineOptions(64, 192, (0, -1, 1, "s"), seed=4)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    # 8 samples (4 per pipeline of the shard): batches of 3 leave a remainder each epoch
    for input_context, samples in ((None, 8), (context, 4)):
        assert len(entries) == 8
        both = [b.color_aug["0"].numpy() for b in make_dataset(
            layout, entries, options, 3, epoch=5, epochs=2, input_context=input_context)]
        alone = [b.color_aug["0"].numpy() for epoch in (5, 6) for b in make_dataset(
            layout, entries, options, 3, epoch=epoch, input_context=input_context)]
        assert len(both) == len(alone) == 2 * (samples // 3)
        for a, b in zip(both, alone):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="drop_remainder"):
        make_dataset(layout, entries, options, 2, epochs=2, drop_remainder=False)


def test_training_fails_fast_naming_a_missing_frame(tmp_path):
    world = tmp_path / "world"
    make_synthetic_kitti(world, seed=1, num_drives=1, frames_per_drive=12, height=64, width=192)
    missing = (world / "2011_09_26" / "2011_09_26_drive_0001_sync" / "image_03" / "data"
               / "0000000003.png")
    missing.unlink()
    result = subprocess.run(train_command(world, tmp_path / "logs"), capture_output=True,
                            text=True, timeout=300, env=ENV)
    assert result.returncode == 2
    assert f"{missing}: missing (needed by train_files.txt line" in result.stderr
    assert not (tmp_path / "logs" / "run" / "checkpoints").exists()


def free_ports(count):
    import socket
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_loopback_end_with_identical_weights(world, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        env = dict(ENV, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                              "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            train_command(world, tmp_path, "--mode=stereo", "--max_steps", "2",
                          "--batch_size", "4"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env))
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    for p, out in zip(processes, outputs):
        assert p.returncode == 0, out[-3000:]
    chief = tmp_path / "run"
    assert "2 replica(s)" in (chief / "train.log").read_text()
    # stereo (no pose network: each worker traces and takes its first step several times
    # faster than in mono_stereo); the all-reduce is the same for every variable, and
    # tests/test_distributed.py steps the pose network on two replicas
    _, depth_a, _ = load_networks(chief / "models" / "weights_final", with_pose=False)
    _, depth_b, _ = load_networks(chief / ".worker_1" / "models" / "weights_final",
                                  with_pose=False)
    pairs = list(zip(depth_a.trainable_variables, depth_b.trainable_variables))
    assert len(pairs) == 88  # every kernel, bias and BatchNorm scale and offset
    for a, b in pairs:
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def numpy_abs_rel_a1(gt, disp):
    """The protocol by hand, in float64: disparity resized to the ground truth, inverted, Garg
    crop, median scaling, clamp to [1e-3, 80]; returns (abs_rel, a1)."""
    h, w = gt.shape
    depth = 1.0 / cv2.resize(disp.astype(np.float32), (w, h)).astype(np.float64)
    crop = np.zeros_like(gt, bool)
    crop[int(0.40810811 * h):int(0.99189189 * h), int(0.03594771 * w):int(0.96405229 * w)] = True
    mask = crop & (gt > 1e-3) & (gt < 80)
    target, pred = gt[mask].astype(np.float64), depth[mask]
    pred = np.clip(pred * np.median(target) / np.median(pred), 1e-3, 80)
    ratio = np.maximum(target / pred, pred / target)
    return np.mean(np.abs(target - pred) / target), np.mean(ratio < 1.25)


def val_abs_rel_a1_by_hand(depth_net, layout, val):
    """(abs_rel, a1) of ``depth_net`` on the val frames against their LiDAR, by hand: the
    frames at the feed size (the world's), depth range 0.1..100, LiDAR nearest-resized to
    375x1242, then :func:`numpy_abs_rel_a1`."""
    from monodepth_tf.data.gt_depth import lidar_depth_map

    by_hand = []
    for entry in val:
        image = cv2.cvtColor(cv2.imread(str(layout.image_path(entry.folder, entry.frame_index,
                                                              entry.side))), cv2.COLOR_BGR2RGB)
        disp = depth_net(image[None].astype(np.float32) / 255.0, training=False)[0][0, ..., 0]
        scaled = 1 / 100.0 + (1 / 0.1 - 1 / 100.0) * disp.numpy().astype(np.float64)
        gt = lidar_depth_map(layout.calib_dir(entry.folder),
                             layout.velodyne_path(entry.folder, entry.frame_index), 2)
        gt = cv2.resize(gt.astype(np.float32), (1242, 375), interpolation=cv2.INTER_NEAREST)
        by_hand.append(numpy_abs_rel_a1(gt, scaled))
    return tuple(np.mean(by_hand, axis=0))


def test_validation_scores_val_lidar_keeps_best_weights_and_logs_images(world, tmp_path):
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.splits import read_split
    from monodepth_tf.training.loop import DataSource, Run

    layout = KittiRawLayout(world, "png")
    val = read_split(world / "splits", "synthetic", "val")
    options = TrainOptions(data_path=str(world), split="synthetic", png=True, height=64,
                           width=192, batch_size=2, weights_init="scratch", use_stereo=True,
                           log_dir=str(tmp_path), model_name="val", max_steps=2,
                           log_frequency=1, learning_rate=1e-3).validate()
    run = Run(options, DataSource(layout, read_split(world / "splits", "synthetic", "train"),
                                  val))
    assert run.train() == "done"
    best = tmp_path / "val" / "models" / "weights_best"
    recorded = json.loads((best / "config.json").read_text())
    assert recorded["epoch"] == 0 and recorded["step"] == 2
    assert float(run.checkpoints.best_abs_rel.numpy()) == recorded["val"]["abs_rel"]

    # the same numbers by hand: the best weights on the val frames against their LiDAR
    config, depth_net, _ = load_networks(best, with_pose=False)
    for name in ("abs_rel", "a1"):
        assert name in recorded["val"]
    abs_rel, a1 = val_abs_rel_a1_by_hand(depth_net, layout, val)
    assert recorded["val"]["abs_rel"] == pytest.approx(abs_rel, rel=1e-4)
    assert recorded["val"]["a1"] == pytest.approx(a1, abs=1e-3)

    # TensorBoard: val metrics, inputs, one disparity per scale, the auto-mask
    tags = {}
    for path in (tmp_path / "val" / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(value)
    assert {"val/abs_rel", "val/loss", "loss", "color/0", "automask/0"} <= set(tags)
    for scale in range(4):
        picture = tf.make_ndarray(tags[f"disp/{scale}"][-1].tensor)
        assert picture[:2].tolist() == [str(192 >> scale).encode(), str(64 >> scale).encode()]
        assert tf.io.decode_png(picture[2]).shape == (64 >> scale, 192 >> scale, 3)


def test_untrained_network_is_scored_first_and_every_validation_goes_to_metrics_jsonl(
        world, tmp_path):
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.splits import read_split
    from monodepth_tf.evaluation.depth import METRIC_NAMES
    from monodepth_tf.training.loop import DataSource, Run

    layout = KittiRawLayout(world, "png")
    val = read_split(world / "splits", "synthetic", "val")
    train = read_split(world / "splits", "synthetic", "train")
    options = TrainOptions(data_path=str(world), split="synthetic", png=True, height=64,
                           width=192, batch_size=2, weights_init="scratch", use_stereo=True,
                           frame_ids=(0,), log_dir=str(tmp_path), model_name="jsonl",
                           num_epochs=2, log_frequency=100, learning_rate=1e-3).validate()
    run = Run(options, DataSource(layout, train, val))
    run.initialize()
    untrained = val_abs_rel_a1_by_hand(run.system.depth, layout, val)
    assert run.train() == "done"
    lines = (tmp_path / "jsonl" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    steps_per_epoch = len(train) // 2
    assert [(r["epoch"], r["step"]) for r in records] == [
        (-1, 0), (0, steps_per_epoch), (1, 2 * steps_per_epoch)]
    for record in records:
        assert set(record) == {"epoch", "step", "loss", *METRIC_NAMES}
        assert all(np.isfinite(record[k]) and record[k] > 0 for k in ("loss", *METRIC_NAMES))
    # epoch -1 is the untrained network, scored by hand above
    assert records[0]["abs_rel"] == pytest.approx(untrained[0], rel=1e-4)
    assert records[0]["a1"] == pytest.approx(untrained[1], abs=1e-3)
    # three validations and the logged training samples: one trace of the inference pass,
    # which takes any batch size and gives a sample the disparity it gets in a larger batch
    # (inference-mode BatchNorm)
    sample = tf.nest.map_structure(lambda t: t[:1], next(iter(run.validator.dataset()))[0])
    single, _ = run.inference(sample)
    twice, _ = run.inference(tf.nest.map_structure(lambda t: tf.concat([t, t], 0), sample))
    assert twice.disps[0].shape[0] == 2
    np.testing.assert_allclose(twice.disps[0][:1], single.disps[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(twice.disps[0][1:], single.disps[0], rtol=1e-5, atol=1e-7)
    assert run.inference.function.experimental_get_tracing_count() == 1
    # it is a baseline, not a candidate for weights_best; the trained epochs are
    best = json.loads((tmp_path / "jsonl" / "models" / "weights_best" / "config.json")
                      .read_text())
    trained = min(records[1:], key=lambda r: r["abs_rel"])
    assert (best["epoch"], best["val"]["abs_rel"]) == (trained["epoch"], trained["abs_rel"])
    # the log says the same
    log = (tmp_path / "jsonl" / "train.log").read_text()
    assert f"epoch -1 val loss {records[0]['loss']:.5f} abs_rel {records[0]['abs_rel']:.4f}" in log
    # a resumed run does not score the untrained network again
    options = dataclasses.replace(options, num_epochs=3)
    assert Run(options, DataSource(layout, train, val)).train() == "done"
    records = [json.loads(line) for line in
               (tmp_path / "jsonl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [-1, 0, 1, 2]
    check_timings(tmp_path / "jsonl", steps_per_epoch)


def check_timings(run_dir, steps_per_epoch):
    """timings.jsonl of a 2-epoch run resumed for a third: one line per process, every step,
    validation, checkpoint and weight folder the log reports timed once, the parts within the
    wall time."""
    lines = (run_dir / "timings.jsonl").read_text().splitlines()
    first, resumed = [json.loads(line) for line in lines]
    log = (run_dir / "train.log").read_text()
    weights = log.count(" saved ")  # weights_0, weights_1, weights_best (1 or 2), final; again
    assert [(t["start_step"], t["end_step"]) for t in (first, resumed)] == [
        (0, 2 * steps_per_epoch), (2 * steps_per_epoch, 3 * steps_per_epoch)]
    assert [t["steps"] for t in (first, resumed)] == [2 * steps_per_epoch - 1,
                                                      steps_per_epoch - 1]
    assert [len(t["validation_s"]) for t in (first, resumed)] == [3, 1]
    assert [len(t["checkpoint_s"]) for t in (first, resumed)] == [2, 1]
    assert len(first["weights_s"]) + len(resumed["weights_s"]) == weights
    assert [len(t["images_s"]) for t in (first, resumed)] == [1, 1]  # each process's first
    for t in (first, resumed):
        parts = t["first_step_s"] + t["steps_s"] + sum(
            sum(t[f"{name}_s"]) for name in ("validation", "checkpoint", "weights", "images"))
        assert 0 < parts <= t["wall_s"] + 0.01
        assert t["other_s"] == pytest.approx(t["wall_s"] - parts, abs=0.01)
        assert t["samples_per_s"] == pytest.approx(t["steps"] * 2 / t["steps_s"], rel=1e-2)
    assert len(re.findall(r"time [0-9.]+ s: first step [0-9.]+ s, [0-9]+ steps", log)) == 2


def nan_statistic(run):
    """Puts a NaN into the depth encoder's first BatchNorm moving variance: the training loss
    (batch statistics) stays finite, inference (moving statistics) gives NaN."""
    variable = next(v for v in run.system.depth.encoder.variables
                    if "moving_variance" in v.path)
    variable.assign(np.full(variable.shape, np.nan, np.float32))


def nan_run(world, tmp_path, name, val):
    """A 2-step Run on the synthetic world, a checkpoint every step, ``val`` its val samples."""
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.splits import read_split
    from monodepth_tf.training.loop import DataSource, Run

    options = TrainOptions(data_path=str(world), split="synthetic", png=True, height=64,
                           width=192, batch_size=2, weights_init="scratch", use_stereo=True,
                           log_dir=str(tmp_path), model_name=name, max_steps=2, save_steps=1,
                           learning_rate=1e-3).validate()
    train = read_split(world / "splits", "synthetic", "train")
    return Run(options, DataSource(KittiRawLayout(world, "png"), train, val))


def test_a_non_finite_validation_stops_the_run_keeping_the_last_good_checkpoint(world,
                                                                                tmp_path):
    """The untrained network's validation is finite; the networks go NaN (a BatchNorm
    statistic) before the next, at the epoch's end: the run stops there, before that epoch's
    checkpoint (written after its validation), names the checkpoint of step 1 and writes no
    weights folder (before: NaN scores were logged and the weights saved)."""
    from monodepth_tf.data.splits import read_split

    run = nan_run(world, tmp_path, "nan_val", read_split(world / "splits", "synthetic", "val"))
    validator, calls = run.validator, []

    def poisoned(system):
        calls.append(len(calls))
        if len(calls) == 2:
            nan_statistic(run)
        return validator(system)

    run.validator = poisoned
    assert run.train() == "non-finite validation"
    assert len(calls) == 2
    folder = tmp_path / "nan_val"
    latest = str(folder / "checkpoints" / "ckpt-1")
    assert tf.train.latest_checkpoint(str(folder / "checkpoints")) == latest
    assert not (folder / "models").exists()
    log = (folder / "train.log").read_text()
    assert ("validation of epoch 0 at step 2: loss nan, abs_rel nan, sq_rel nan, rmse nan, "
            f"rmse_log nan: stopping; the last good checkpoint is {latest}") in log


def test_non_finite_weights_stop_the_run_before_a_checkpoint_is_written(world, tmp_path):
    """Finite training losses, a NaN BatchNorm statistic: the first checkpoint is refused, the
    run stops (no checkpoint, no weights folder)."""
    run = nan_run(world, tmp_path, "nan_weights", [])
    nan_statistic(run)
    assert run.train() == "non-finite weights"
    log = (tmp_path / "nan_weights" / "train.log").read_text()
    assert "step 1/2 loss" in log and "loss nan" not in log
    assert "refusing to write checkpoint 1 of" in log
    assert "stopping; the last good checkpoint is None" in log
    assert not (tmp_path / "nan_weights" / "checkpoints").exists()
    assert not (tmp_path / "nan_weights" / "models").exists()


QUIET_ENV = {k: v for k, v in os.environ.items()
             if k not in ("TF_CPP_MIN_LOG_LEVEL", "MONODEPTH_VERBOSE")}
TF_CHATTER = re.compile(r"oneDNN|cuda|cuInit|absl::InitializeLog|retracing", re.IGNORECASE)


def test_tensorflow_start_up_log_shows_only_with_verbose(world, tmp_path):
    """--verbose shows TensorFlow's start-up log (on a run that stops at a bad flag); without
    it, nothing. (A whole run's output, without chatter or retracing warnings, is checked on
    the README's demo command: tests/test_readme_commands.py.)"""
    for verbose in (True, False):
        rejected = subprocess.run(train_command(world, tmp_path, "--height", "100",
                                                *(["--verbose"] if verbose else [])),
                                  capture_output=True, text=True, timeout=300, env=QUIET_ENV)
        assert rejected.returncode == 2 and "--height=100" in rejected.stderr
        # (TensorFlow names oneDNN only where it is on: on every CPU under monodepth_tf)
        assert bool(re.search("oneDNN", rejected.stderr)) == verbose, rejected.stderr
        assert bool(TF_CHATTER.findall(rejected.stderr)) == verbose, rejected.stderr


def _float64_ops(graph_def) -> list:
    """``"op (node)"`` of every node of ``graph_def``, and of every function in its library
    (gradients, custom gradients, nested calls), with a float64 type attribute."""
    double = tf.float64.as_datatype_enum

    def has_double(node) -> bool:
        return any(value.type == double or double in value.list.type
                   for value in node.attr.values())

    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    return [f"{node.op} ({node.name})" for node in nodes if has_double(node)]


@pytest.mark.parametrize("exact_loss", [False, True])
def test_training_step_is_float32_unless_the_exact_loss_is_asked_for(exact_loss):
    """The default loss suits GPUs (float64 runs there at 1/32-1/64 of float32's speed): the
    traced training step, backward pass included, holds no float64 op; ``--exact_loss`` (the
    original's roundings, emulated in float64) does."""
    from absl import flags as absl_flags

    from benchmarks.train_step import synthetic_batch
    from monodepth_tf.training.options import define_training_flags, from_flags
    from monodepth_tf.training.step import Trainer
    from monodepth_tf.training.devices import make_strategy

    values = absl_flags.FlagValues()
    define_training_flags(values)
    values(["train", "--height=64", "--width=192", "--batch_size=2", "--weights_init=scratch",
            "--mode=mono_stereo"] + (["--exact_loss"] if exact_loss else []))
    options = from_flags(values)
    assert options.exact_loss is exact_loss and options.loss_options().exact is exact_loss
    saved = tf.config.optimizer.get_experimental_options()
    try:
        strategy = make_strategy()
        trainer = Trainer(strategy, options.model_config(), options.loss_options())
        batch = synthetic_batch(options.all_frame_ids, 2, 64, 192, options.scales)
        distributed = strategy.experimental_distribute_values_from_function(lambda _: batch)
        graph = trainer._train_step.get_concrete_function(distributed).graph.as_graph_def()
    finally:
        tf.config.optimizer.set_experimental_options(saved)
    found = _float64_ops(graph)
    if exact_loss:
        assert any(op.startswith("Cast") for op in found) and len(found) > 50, found
    else:
        assert found == []


def test_a_checkpoint_holds_each_value_once(world, tmp_path):
    """What resumption needs and no more (issue 15: the weights were written twice, once for
    the networks and once for the optimizer): every network variable, and Adam's step and two
    moments per trainable weight; the file is that many float32 values."""
    from monodepth_tf.training.devices import make_strategy
    from monodepth_tf.training.options import MODES, TrainOptions
    from monodepth_tf.training.step import Trainer

    options = TrainOptions(height=64, width=192, batch_size=2, weights_init="scratch",
                           **{k: v for k, v in MODES["mono"].items() if k != "split"}).validate()
    trainer = Trainer(make_strategy(), options.model_config(), options.loss_options(), 1e-4,
                      15, 10)
    path = trainer.checkpoint().save(str(tmp_path / "ckpt"))
    saved = {name: int(np.prod(shape)) for name, shape in tf.train.list_variables(path)
             if name not in ("_CHECKPOINTABLE_OBJECT_GRAPH",
                             "save_counter/.ATTRIBUTES/VARIABLE_VALUE")}
    networks = [v for net in trainer.system.networks().values() for v in net.variables]
    trainable = [v for net in trainer.system.networks().values()
                 for v in net.trainable_variables]
    expected = (sum(int(np.prod(v.shape)) for v in networks)
                + 2 * sum(int(np.prod(v.shape)) for v in trainable) + 1)  # + Adam's step
    assert sum(saved.values()) == expected
    data_bytes = sum(f.stat().st_size for f in tmp_path.glob("ckpt-1.data-*"))
    assert expected * 4 <= data_bytes <= expected * 4 * 1.001
    assert not [name for name in saved if name.startswith("optimizer/_trainable_variables")]


@pytest.mark.parametrize("flags,warned", [(["fma", "avx2"], True),
                                          (["avx2", "avx512f", "avx512_bf16"], False)])
def test_bfloat16_on_a_cpu_without_bfloat16_instructions_is_warned_about(world, tmp_path,
                                                                        monkeypatch, flags,
                                                                        warned):
    from monodepth_tf.data.kitti import KittiRawLayout
    from monodepth_tf.data.splits import read_split
    from monodepth_tf.training import loop

    monkeypatch.setattr(loop, "cpu_flags", lambda: flags)
    options = TrainOptions(data_path=str(world), split="synthetic", png=True, height=64,
                           width=192, batch_size=2, weights_init="scratch",
                           log_dir=str(tmp_path), model_name="bf16", max_steps=1,
                           mixed_precision="bfloat16").validate()
    train = read_split(world / "splits", "synthetic", "train")
    loop.Run(options, loop.DataSource(KittiRawLayout(world, "png"), train, []))
    log = (tmp_path / "bf16" / "train.log").read_text()
    assert ("--mixed_precision=bfloat16: this CPU has no bfloat16 instructions" in log) == warned


def test_cpu_flags_are_read_from_cpuinfo_and_slow_mixed_precision_is_warned_about(tmp_path):
    from monodepth_tf.cpu import cpu_flags
    from monodepth_tf.training.devices import precision_warning

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n"
                       "bugs\t\t: sysret_ss_attrs\n")
    assert cpu_flags(str(cpuinfo)) == ["fpu", "sse2", "avx2", "fma"]
    assert cpu_flags(str(tmp_path / "absent")) is None
    assert "avx512_bf16 nor amx_bf16" in precision_warning("bfloat16", False, ["avx2"])
    assert precision_warning("bfloat16", False, ["avx2", "amx_bf16"]) is None
    assert precision_warning("bfloat16", True, ["avx2"]) is None  # on GPUs
    assert precision_warning("bfloat16", False, None) is None  # flags unknown
    for flags in (["avx2"], ["avx512_fp16", "amx_bf16"], None):  # float16: a GPU or a warning
        assert "meant for GPUs" in precision_warning("float16", False, flags)
    assert precision_warning("float16", True, ["avx2"]) is None
    assert precision_warning(None, False, ["avx2"]) is None
