"""SIGKILL at ten points of a training run, resuming after each: does the run end with the
uninterrupted run's weights? (Issue 15's table; a few of these points run in the test suite,
tests/test_training_loop.py, this script runs them all.)

    python benchmarks/kill_resume.py [--workdir /tmp/kill_resume] [--json results.jsonl]

A synthetic world (one drive, 64x192) is trained for 3 epochs of 4 steps (batch 2,
--save_steps 1, --deterministic) once without interruption, and once killed at each point
below in turn, each restart resuming from what the previous kill left (tests/pausing_train.py
pauses the run at the point, then it is killed). After the last restart the run ends; its
newest checkpoint (every network weight, BatchNorm statistic, Adam moment, epoch and best val
abs_rel) and every weights folder it wrote must equal the uninterrupted run's, bit for bit.

Prints one row per kill (what the run left on disk, where the restart resumed) and the verdict;
with --json, the same as JSON lines.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import monodepth_tf  # noqa: E402,F401  (before TensorFlow: oneDNN on, as in bin/)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PAUSING_TRAIN = PROJECT_ROOT / "tests" / "pausing_train.py"
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

# Where each kill lands, in the order the run reaches them (each restart resumes from what
# the kill before left; see tests/pausing_train.py for the points).
KILL_POINTS = (
    ("step:1", "inside the first step, before any checkpoint"),
    ("shards:2", "checkpoint 2 written to its temporary shard, not merged"),
    ("record:3", "checkpoint 3 on disk, not yet recorded as the newest"),
    ("validation:0", "epoch 0's validation"),
    ("weights:weights_0", "weights_0 half written (staging folder)"),
    ("rename:weights_best", "weights_best being swapped: old one moved away, new not in place"),
    ("step:6", "inside step 6"),
    ("shards:8", "epoch 1's checkpoint, temporary shard written"),
    ("validation:2", "the last epoch's validation"),
    ("weights:weights_final", "weights_final half written (staging folder)"),
)


def train_command(world: Path, log_dir: Path, pausing: bool) -> list:
    """bin/train (or the pausing wrapper) on the synthetic world: 12 steps, a checkpoint each."""
    program = PAUSING_TRAIN if pausing else PROJECT_ROOT / "bin" / "train"
    return [sys.executable, str(program), "--mode=mono_stereo", "--data_path", str(world),
            "--split_dir", str(world / "splits"), "--split", "synthetic", "--png",
            "--height", "64", "--width", "192", "--batch_size", "2", "--weights_init",
            "scratch", "--learning_rate", "1e-3", "--log_dir", str(log_dir), "--model_name",
            "run", "--num_epochs", "3", "--save_steps", "1", "--deterministic"]


def kill_at(command: list, point: str, marker: Path, timeout: float = 900) -> float:
    """Runs ``command`` paused at ``point``, SIGKILLs it there; returns the seconds it ran.

    Raises:
        RuntimeError: the run ended (or timed out) without reaching the point.
    """
    marker.unlink(missing_ok=True)
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=dict(ENV, MONODEPTH_PAUSE=point,
                                        MONODEPTH_PAUSE_MARKER=str(marker)))
    while not marker.exists():
        if process.poll() is not None or time.time() - started > timeout:
            process.kill()
            raise RuntimeError(f"the run did not reach {point}: exit {process.wait()}, "
                               f"{process.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    return time.time() - started


def run_state(run_dir: Path) -> dict:
    """What a run holds: its newest checkpoint's values and its weights folders' weights,
    ``{name: array}`` (the save counter, which counts saves rather than steps, left out)."""
    import tensorflow as tf

    checkpoint = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    reader = tf.train.load_checkpoint(checkpoint)
    state = {f"checkpoint/{name}": reader.get_tensor(name)
             for name in reader.get_variable_to_shape_map() if not name.startswith("save_counter")}
    state["checkpoint"] = np.array(Path(checkpoint).name)
    for folder in sorted((run_dir / "models").iterdir()):
        for path in sorted(folder.glob("*.weights.h5")):
            state.update(h5_arrays(path, f"{folder.name}/{path.name}"))
    return state


def h5_arrays(path: Path, prefix: str) -> dict:
    """Every dataset of a Keras weights file, ``{prefix/dataset path: array}``."""
    import h5py

    arrays = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, item: arrays.__setitem__(f"{prefix}/{name}", item[()])
                      if isinstance(item, h5py.Dataset) else None)
    return arrays


def left_on_disk(run_dir: Path) -> str:
    """The checkpoints and weights folders (and any leftovers of a write) a kill left."""
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("*")
                         if p.name != "checkpoint") if (run_dir / "checkpoints").exists() else []
    models = sorted(p.name for p in (run_dir / "models").glob("*")) \
        if (run_dir / "models").exists() else []
    return f"checkpoints: {', '.join(checkpoints) or '-'}; models: {', '.join(models) or '-'}"


def compare(resumed: dict, reference: dict) -> list:
    """The names whose values differ (or exist on one side only)."""
    names = sorted(set(resumed) | set(reference))
    return [n for n in names if n not in resumed or n not in reference
            or not np.array_equal(resumed[n], reference[n])]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kill_resume"))
    parser.add_argument("--json", type=Path, help="also write the rows as JSON lines here")
    args = parser.parse_args()
    from monodepth_tf.synthetic import make_synthetic_kitti

    world = args.workdir / "world"
    if not (world / "splits").exists():
        make_synthetic_kitti(world, seed=1, num_drives=1, frames_per_drive=12, height=64,
                             width=192)
    reference_dir, killed_dir = args.workdir / "uninterrupted", args.workdir / "killed"
    for folder in (reference_dir, killed_dir):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    reference = subprocess.Popen(train_command(world, reference_dir, False),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    command, marker = train_command(world, killed_dir, True), args.workdir / "paused"
    rows = []
    for number, (point, where) in enumerate(KILL_POINTS, 1):
        seconds = kill_at(command, point, marker)
        row = dict(kill=number, point=point, where=where, seconds=round(seconds, 1),
                   left=left_on_disk(killed_dir / "run"))
        rows.append(row)
        print(f"{number:2d}  {point:22s} {where:65s} {row['left']}", flush=True)
    final = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=1800)
    assert reference.wait(timeout=1800) == 0, "the uninterrupted run failed"
    log = (killed_dir / "run" / "train.log").read_text()
    resumed_from = [line.split("resumed from ", 1)[1] for line in log.splitlines()
                    if "resumed from " in line]
    differences = compare(run_state(killed_dir / "run"), run_state(reference_dir / "run"))
    verdict = dict(final_exit=final.returncode, restarts=len(KILL_POINTS),
                   resumed_from=resumed_from, values_compared=len(run_state(reference_dir / "run")),
                   differing=differences[:20], equal=not differences and final.returncode == 0)
    print(json.dumps(verdict, indent=1))
    if args.json:
        with args.json.open("a") as out:
            for row in rows + [verdict]:
                out.write(json.dumps(row) + "\n")
    sys.exit(0 if verdict["equal"] else 1)


if __name__ == "__main__":
    main()
