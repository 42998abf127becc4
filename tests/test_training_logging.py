"""monodepth_tf.training.logging and .timings: the progress line, the scalars a run writes, and
where its time goes."""

import json
import time
from types import SimpleNamespace

import pytest
import tensorflow as tf

from monodepth_tf.training.logging import RunLog, progress_line
from monodepth_tf.training.timings import PhaseTimes


def test_progress_line_shows_the_bar_loss_speed_and_eta():
    line = progress_line(75, 300, 0.123456, 8.06, 3725.0, width=20)
    assert line == "[#####...............]  75/300 loss 0.12346   8.1 samples/s ETA 01:02:05"
    assert progress_line(300, 300, 0.1, 1.0, 0.0, width=4).startswith("[####] 300/300")


def test_scalars_average_the_losses_since_the_last_write(tmp_path):
    # log_frequency 2 over 5 steps writes steps 1 (the first), 2, 4 and 5 (the last), each the
    # mean of the steps since.
    logs = RunLog(tmp_path, scales=(0, 1), batch_size=2, log_frequency=2, progress=None)
    totals = {1: 0.5, 2: 0.25, 3: 0.125, 4: 1.0, 5: 2.0}
    for step, total in totals.items():
        losses = SimpleNamespace(total=total, per_scale=(total + 1.0, 3.0 * total))
        logs.step(step, 5, losses, learning_rate=1e-4, started=time.time() - 1.0, start_step=0,
                  steps_per_epoch=10)
    logs.writer.flush()
    written = {}
    for path in (tmp_path / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                written[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    expected = {1: 0.5, 2: 0.25, 4: (0.125 + 1.0) / 2, 5: 2.0}
    assert sorted(step for tag, step in written if tag == "loss") == [1, 2, 4, 5]
    for step, mean in expected.items():
        assert written[("loss", step)] == pytest.approx(mean)
        assert written[("loss/0", step)] == pytest.approx(mean + 1.0)
        assert written[("loss/1", step)] == pytest.approx(3.0 * mean)
        assert written[("learning_rate", step)] == pytest.approx(1e-4)
    log_lines = (tmp_path / "train.log").read_text().splitlines()
    assert [line.split(" step ")[1].split()[0] for line in log_lines] == ["1/5", "2/5", "4/5",
                                                                           "5/5"]


def test_validation_appends_one_metrics_line_per_call(tmp_path):
    logs = RunLog(tmp_path, scales=(0,), batch_size=1, log_frequency=1, progress=None)
    depth = dict(abs_rel=0.5, sq_rel=1.0, rmse=2.0, rmse_log=0.25, a1=0.75, a2=0.875, a3=1.0,
                 ratio_median=3.0, ratio_std=0.125)
    logs.validation(-1, 0, SimpleNamespace(loss=0.25, depth=None))
    logs.validation(0, 10, SimpleNamespace(loss=0.125, depth=depth))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0] == {"epoch": -1, "step": 0, "loss": 0.25}
    assert records[1] == {"epoch": 0, "step": 10, "loss": 0.125, "abs_rel": 0.5, "sq_rel": 1.0,
                          "rmse": 2.0, "rmse_log": 0.25, "a1": 0.75, "a2": 0.875, "a3": 1.0}


def test_timings_split_the_wall_time_into_steps_and_phases(tmp_path):
    # a fake clock: each reading is the next of these times (seconds)
    readings = iter([100.0,                # created
                     100.5, 102.0,         # validation -1 from 100.5 to 102.0
                     112.0,                # first step ends (from 102.0: 10 s of tracing)
                     112.25, 113.0,        # images from 112.25 to 113.0
                     115.0, 117.5,         # steps 2 and 3: 2 s and 2.5 s
                     118.0, 121.0,         # validation 0
                     121.0, 121.5,         # weights
                     121.5, 121.75,        # checkpoint
                     125.0,                # step 4: 3.25 s, with the next epoch's first batch
                     126.0])               # the record
    times = PhaseTimes(batch_size=4, start_step=0, clock=lambda: next(readings))
    with times.phase("validation"):
        pass
    times.step_done()
    with times.phase("images"):
        pass
    times.step_done()
    times.step_done()
    for name in ("validation", "weights", "checkpoint"):
        with times.phase(name):
            pass
    times.step_done()
    record = times.record(end_step=4)
    assert record == {"start_step": 0, "end_step": 4, "batch_size": 4, "wall_s": 26.0,
                      "first_step_s": 10.0, "steps": 3, "steps_s": 7.75,
                      "samples_per_s": round(3 * 4 / 7.75, 3),
                      "validation_s": [1.5, 3.0], "checkpoint_s": [0.25], "weights_s": [0.5],
                      "images_s": [0.75], "other_s": 2.25}  # 26 - 23.75 timed
    logs = RunLog(tmp_path, scales=(0,), batch_size=4, log_frequency=1, progress=None)
    logs.timings(record)
    logs.timings(PhaseTimes(batch_size=4, start_step=4, clock=lambda: 0.0).record(end_step=4))
    lines = (tmp_path / "timings.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == record
    assert json.loads(lines[1])["first_step_s"] is None  # a process that took no step
    log = (tmp_path / "train.log").read_text()
    assert ("time 26.0 s: first step 10.0 s, 3 steps 7.8 s (1.55 samples/s), validation 2x 4.5 s, "
            "checkpoint 1x 0.2 s, weights 1x 0.5 s, images 1x 0.8 s, other 2.2 s") in log
