"""monodepth_tf.training.resume: a resume never mixes incompatible options. Options that change
what the checkpoint means are refused (each difference listed, nothing written); the others
are taken, said and recorded; an opt.json older than an option does not break a resume."""

import dataclasses
import functools
import json
import subprocess

import pytest
import tensorflow as tf

from monodepth_tf.synthetic import make_synthetic_kitti
from monodepth_tf.training.options import OptionsError, TrainOptions
from monodepth_tf.training.resume import (CHECKPOINT_STATE, HISTORY_FILE, OPTIONS_FILE,
                                          ResumeCheck, check_resume, compare_with_run,
                                          record_resume, write_options)
from tests.helpers import TRAIN_ENV, train_command

RUN = TrainOptions(batch_size=2, max_steps=5, learning_rate=1e-3, data_path="/data/kitti")


def saved(options: TrainOptions = RUN) -> dict:
    """``options`` as the run's opt.json holds them (through JSON: tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(options)))


def test_changed_fixed_options_are_refused_listing_each_difference():
    command = dataclasses.replace(RUN, batch_size=4, learning_rate=1e-2, frame_ids=(0, 1),
                                  load_weights_folder="/w/mono_640x192")
    with pytest.raises(OptionsError) as raised:
        compare_with_run(command, saved(), "/logs/run")
    lines = str(raised.value).splitlines()
    assert lines[0] == ("cannot resume the run in /logs/run: these options differ from its "
                        "opt.json and would change what its checkpoint means:")
    differences = [line.split(" (")[0] for line in lines[1:-1]]
    assert differences == ["  --frame_ids: run has 0,-1,1, command gives 0,1",
                           "  --batch_size: run has 2, command gives 4",
                           "  --learning_rate: run has 0.001, command gives 0.01",
                           "  --load_weights_folder: run has '', command gives "
                           "/w/mono_640x192"]
    assert lines[-1] == ("Give the run's values to resume it, or start a new run: a new "
                         "--model_name, or delete /logs/run")


def test_options_that_may_change_are_taken_and_said():
    command = dataclasses.replace(RUN, max_steps=10, log_frequency=5, num_workers=2)
    check = compare_with_run(command, saved(), "/logs/run")
    assert check.changed == {"max_steps": (5, 10), "log_frequency": (250, 5),
                             "num_workers": (12, 2)}
    assert check.messages() == ["resuming with --num_workers 2 (was 12)",
                                "resuming with --log_frequency 5 (was 250)",
                                "resuming with --max_steps 10 (was 5)"]
    assert compare_with_run(RUN, saved(), "/logs/run") == ResumeCheck({}, ())


def test_paths_are_compared_as_absolute_paths(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    run = dataclasses.replace(RUN, data_path=str(tmp_path / "kitti"), split_dir="splits")
    command = dataclasses.replace(run, data_path="~/kitti", split_dir=str(tmp_path / "splits"))
    assert compare_with_run(command, saved(run), tmp_path).changed == {}
    moved = dataclasses.replace(run, data_path=str(tmp_path / "ssd" / "kitti"))
    assert compare_with_run(moved, saved(run), tmp_path).messages() == [
        f"resuming with --data_path {tmp_path}/ssd/kitti (was {tmp_path}/kitti)"]


def test_an_opt_json_older_than_an_option_takes_its_default_and_says_so():
    old = saved()
    del old["skip_static"], old["exact_loss"]
    old["retired_option"] = 3
    check = compare_with_run(RUN, old, "/logs/run")
    assert check.changed == {}
    assert check.notes == (
        "the run's opt.json has no --exact_loss (an option added since): taken as its "
        "default False",
        "the run's opt.json has no --skip_static (an option added since): taken as its "
        "default 0.0",
        "the run's opt.json has --retired_option, no longer an option: ignored")
    # a fixed option missing from it compares its default with the command's value
    del old["seed"]
    with pytest.raises(OptionsError, match=r"--seed: run has 0 \(the default: its opt.json "
                                           r"predates the option\), command gives 7"):
        compare_with_run(dataclasses.replace(RUN, seed=7), old, "/logs/run")


def test_a_run_is_checked_only_when_it_holds_a_checkpoint(tmp_path):
    write_options(tmp_path, RUN)
    changed = dataclasses.replace(RUN, batch_size=4)
    assert check_resume(changed, tmp_path) is None  # killed before its first checkpoint
    (tmp_path / CHECKPOINT_STATE).parent.mkdir()
    (tmp_path / CHECKPOINT_STATE).write_text('model_checkpoint_path: "ckpt-3"\n')
    with pytest.raises(OptionsError, match="--batch_size: run has 2, command gives 4"):
        check_resume(changed, tmp_path)
    (tmp_path / OPTIONS_FILE).write_text("{not json")
    with pytest.raises(OptionsError, match=f"{tmp_path / OPTIONS_FILE} is not valid JSON"):
        check_resume(RUN, tmp_path)
    (tmp_path / OPTIONS_FILE).unlink()
    assert check_resume(changed, tmp_path).notes == (
        "the run has no opt.json: the command's options are taken as they are, unchecked",)


def test_a_resume_is_recorded_in_opt_json_and_its_history(tmp_path):
    write_options(tmp_path, RUN)
    unchanged = (tmp_path / OPTIONS_FILE).read_bytes()
    record_resume(tmp_path, RUN, ResumeCheck({}, ()), step=3)
    assert (tmp_path / OPTIONS_FILE).read_bytes() == unchanged
    assert not (tmp_path / HISTORY_FILE).exists()
    for step, max_steps in ((3, 10), (10, 20)):
        command = dataclasses.replace(RUN, max_steps=max_steps)
        check = compare_with_run(command, json.loads((tmp_path / OPTIONS_FILE).read_text()),
                                 tmp_path)
        record_resume(tmp_path, command, check, step=step)
    assert json.loads((tmp_path / OPTIONS_FILE).read_text()) == saved(
        dataclasses.replace(RUN, max_steps=20))
    history = [json.loads(line) for line in (tmp_path / HISTORY_FILE).read_text().splitlines()]
    assert [(h["step"], h["changed"]) for h in history] == [(3, {"max_steps": [5, 10]}),
                                                           (10, {"max_steps": [10, 20]})]
    assert sorted(p.name for p in tmp_path.iterdir()) == [OPTIONS_FILE, HISTORY_FILE]


def test_a_run_refuses_an_incompatible_resume_before_building_or_writing(tmp_path):
    """Run (the library's entry) checks too, before its networks are built or its log
    opened."""
    from monodepth_tf.training.loop import DataSource, Run

    run = dataclasses.replace(RUN, log_dir=str(tmp_path), model_name="run")
    (run.run_dir / CHECKPOINT_STATE).parent.mkdir(parents=True)
    write_options(run.run_dir, run)
    (run.run_dir / CHECKPOINT_STATE).write_text('model_checkpoint_path: "ckpt-3"\n')
    before = files_and_times(run.run_dir)
    with pytest.raises(OptionsError, match="--batch_size: run has 2, command gives 4"):
        Run(dataclasses.replace(run, batch_size=4), DataSource(None, [], []))
    assert files_and_times(run.run_dir) == before


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    make_synthetic_kitti(root, seed=1, num_drives=1, frames_per_drive=12, height=64, width=192)
    return root


def files_and_times(folder):
    """``{relative path: (size, mtime_ns)}`` of every file under ``folder``."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_bin_train_refuses_an_incompatible_resume_and_records_an_accepted_one(world, tmp_path):
    """Before: a run made at --batch_size 2 resumed at --batch_size 4 (a data position computed
    for 4, opt.json still saying 2), and a new --learning_rate was ignored without a word."""
    # stereo: no pose network, so each process traces several times faster than mono_stereo
    command = functools.partial(train_command, world, tmp_path, "--mode=stereo")
    first = subprocess.run(command("--max_steps", "1"),
                           capture_output=True, text=True, timeout=600, env=TRAIN_ENV)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "run"
    before = files_and_times(run)
    refused = subprocess.run(command("--max_steps", "1", "--batch_size", "4",
                                     "--learning_rate", "1e-2"),
                             capture_output=True, text=True, timeout=600, env=TRAIN_ENV)
    assert refused.returncode == 2
    assert f"error: cannot resume the run in {run}" in refused.stderr
    assert "  --batch_size: run has 2, command gives 4 (" in refused.stderr
    assert "  --learning_rate: run has 0.001, command gives 0.01 (" in refused.stderr
    assert "a new --model_name, or delete" in refused.stderr
    assert files_and_times(run) == before  # nothing written, not even a log line

    resumed = subprocess.run(command("--max_steps", "2", "--log_frequency", "1"),
                             capture_output=True, text=True, timeout=600, env=TRAIN_ENV)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming with --max_steps 2 (was 1)" in resumed.stdout
    assert "resuming with --log_frequency 1 (was 250)" in resumed.stdout
    assert "resuming with --max_steps 2 (was 1)" in (run / "train.log").read_text()
    options = json.loads((run / OPTIONS_FILE).read_text())
    assert (options["max_steps"], options["log_frequency"], options["batch_size"]) == (2, 1, 2)
    history = [json.loads(line) for line in (run / HISTORY_FILE).read_text().splitlines()]
    assert len(history) == 1
    assert history[0]["step"] == 1
    assert history[0]["changed"] == {"max_steps": [1, 2], "log_frequency": [250, 1]}
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert tf.train.load_variable(latest, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") \
        == 2
