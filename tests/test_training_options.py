"""monodepth_tf.training.options: every numeric option bounded, named in the message, before
any work starts; the resume rules classify every option."""

import dataclasses
import math
import subprocess

import pytest

from monodepth_tf.training.options import (FIXED, MAY_CHANGE, NUMBER_RANGES, RESUME_RULES,
                                           RUN_FOLDER, OptionsError, TrainOptions)
from tests.helpers import TRAIN_ENV, train_command


@pytest.mark.parametrize("change,message", [
    (dict(learning_rate=-1.0), "--learning_rate=-1.0 must be greater than 0"),
    (dict(learning_rate=0.0), "--learning_rate=0.0 must be greater than 0"),
    (dict(learning_rate=math.nan), "--learning_rate=nan must be a finite number"),
    (dict(min_depth=10.0, max_depth=5.0), "--min_depth=10.0 and --max_depth=5.0 must satisfy "
                                          "0 < min_depth < max_depth"),
    (dict(min_depth=0.0), "--min_depth=0.0 must be greater than 0"),
    (dict(max_depth=math.inf), "--max_depth=inf must be a finite number"),
    (dict(num_epochs=0), "--num_epochs=0 must be at least 1"),
    (dict(batch_size=0), "--batch_size=0 must be at least 1"),
    (dict(height=0), "--height=0 must be greater than 0"),
    (dict(width=-64), "--width=-64 must be greater than 0"),
    (dict(disparity_smoothness=-1e-3), "--disparity_smoothness=-0.001 must be at least 0"),
    (dict(scheduler_step_size=0), "--scheduler_step_size=0 must be at least 1"),
    (dict(log_frequency=0), "--log_frequency=0 must be at least 1"),
    (dict(save_frequency=0), "--save_frequency=0 must be at least 1"),
    (dict(save_steps=-1), r"--save_steps=-1 must be at least 0 \(0: checkpoints at epoch"),
    (dict(max_steps=-5), r"--max_steps=-5 must be at least 0 \(0: no limit\)"),
    (dict(val_samples=-1), r"--val_samples=-1 must be at least 0 \(0: all\)"),
    (dict(num_workers=-1), "--num_workers=-1 must be at least 0"),
    (dict(seed=-1), "--seed=-1 must be at least 0"),
    (dict(seed=2 ** 32), "--seed=4294967296 must be below 2\\*\\*32"),
    (dict(frame_stride=0), "--frame_stride=0 must be at least 1"),
    (dict(target_fps=-2.0), r"--target_fps=-2.0 must be at least 0 \(0: off\)"),
    (dict(skip_static=-0.5), "--skip_static=-0.5 must be at least 0"),
    (dict(scales=(0, 2)), "--scales must be 0, 0 1, 0 1 2 or 0 1 2 3"),
    (dict(models_to_load=("encoder", "decoder")), "--models_to_load names decoder: choose "
                                                  "among encoder,depth,pose_encoder,pose"),
    (dict(model_name=""), "--model_name is empty"),
])
def test_out_of_range_options_are_refused_naming_the_flag_and_the_bound(change, message):
    with pytest.raises(OptionsError, match=message):
        TrainOptions(**change).validate()


# The lowest value each range accepts (hand-written from the flags' meanings).
ACCEPTED_LOWEST = dict(height=32, width=32, batch_size=1, learning_rate=1e-9, num_epochs=1,
                       scheduler_step_size=1, disparity_smoothness=0.0, min_depth=1e-6,
                       max_depth=2e-6, log_frequency=1, save_frequency=1, save_steps=0,
                       max_steps=0, val_samples=0, num_workers=0, seed=0, frame_stride=1,
                       target_fps=0.0, skip_static=0.0)


def test_the_bounds_themselves_are_accepted():
    assert set(ACCEPTED_LOWEST) == set(NUMBER_RANGES)
    TrainOptions(**ACCEPTED_LOWEST).validate()
    TrainOptions(seed=2 ** 32 - 1, target_fps=0.5, dataset="folder", data_path="f").validate()


def test_every_numeric_option_has_a_range():
    """A new int or float option must be given a range (num_layers is one of a set)."""
    numeric = {f.name for f in dataclasses.fields(TrainOptions)
               if f.type in (int, float, "int", "float")}
    assert numeric - {"num_layers"} == set(NUMBER_RANGES)


def test_every_option_has_a_resume_rule():
    """A new option must be classified: fixed, may change on a resume, or the run folder."""
    assert set(RESUME_RULES) == {f.name for f in dataclasses.fields(TrainOptions)}
    assert {rule for rule, _ in RESUME_RULES.values()} == {FIXED, MAY_CHANGE, RUN_FOLDER}
    fixed = {name for name, (rule, _) in RESUME_RULES.items() if rule == FIXED}
    assert {"batch_size", "height", "width", "frame_ids", "scales", "use_stereo", "num_layers",
            "pose_model_type", "pose_model_input", "split", "dataset", "learning_rate",
            "load_weights_folder", "weights_init"} <= fixed
    assert {"num_epochs", "max_steps", "log_frequency", "save_frequency", "save_steps",
            "num_workers", "val_samples"}.isdisjoint(fixed)


def test_bin_train_refuses_a_negative_learning_rate_before_anything_is_written(tmp_path):
    """Before: ``--learning_rate -1`` trained, validated to NaN and saved weights_final."""
    command = train_command(tmp_path / "no_world", tmp_path, "--learning_rate", "-1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env=TRAIN_ENV)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "error: --learning_rate=-1.0 must be greater than 0" in result.stderr
    assert list(tmp_path.iterdir()) == []
