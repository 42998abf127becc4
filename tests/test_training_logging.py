"""monodepth_tf.training.logging: the progress line, and the scalars a run writes."""

import json
import time
from types import SimpleNamespace

import pytest
import tensorflow as tf

from monodepth_tf.training.logging import RunLog, progress_line


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
