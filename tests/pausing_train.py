"""bin/train, paused at a chosen point so that a test can SIGKILL it there, inside a phase that
is otherwise too short to hit (a checkpoint's write, a weights folder's swap).

    MONODEPTH_PAUSE=<phase>:<argument> MONODEPTH_PAUSE_MARKER=<file> python pausing_train.py \\
        <bin/train's flags>

When the point is reached the marker file is written (holding the point) and the process
sleeps until killed. Points:

    step:<n>        inside training step n (computed, not yet returned to the loop)
    shards:<n>      checkpoint n's data written to its temporary shard, not yet merged
    record:<n>      checkpoint n complete on disk, not yet recorded as the newest
    validation:<e>  at the start of epoch e's validation
    weights:<name>  weights folder <name>: its first file written in the staging folder
    rename:<name>   weights folder <name>: the old one renamed away, the new one not yet in place
"""

import os
import runpy
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def pause(point: str) -> None:
    Path(os.environ["MONODEPTH_PAUSE_MARKER"]).write_text(point)
    while True:
        time.sleep(60)


def install(phase: str, argument: str) -> None:
    """Wraps the one function where ``phase`` happens."""
    import keras
    from tensorflow.python.checkpoint import checkpoint_management
    from tensorflow.python.ops import gen_io_ops

    from monodepth_tf.training.loop import Run
    from monodepth_tf.training.step import Trainer
    from monodepth_tf.weights import folder as weights_folder

    point = f"{phase}:{argument}"
    if phase == "step":
        original_step = Trainer.train_step

        def train_step(self, batch):
            result = original_step(self, batch)
            float(result.total)  # the step has run
            if int(self.iterations.numpy()) == int(argument):
                pause(point)
            return result
        Trainer.train_step = train_step
    elif phase == "shards":
        original_merge = gen_io_ops.merge_v2_checkpoints

        def merge(prefixes, prefix, *args, **kwargs):
            if prefix.numpy().decode().endswith(f"ckpt-{argument}"):
                pause(point)
            return original_merge(prefixes, prefix, *args, **kwargs)
        gen_io_ops.merge_v2_checkpoints = merge
    elif phase == "record":
        original_record = checkpoint_management.CheckpointManager._record_state

        def record(self):
            if self.latest_checkpoint.endswith(f"ckpt-{argument}"):
                pause(point)
            return original_record(self)
        checkpoint_management.CheckpointManager._record_state = record
    elif phase == "validation":
        original_validate = Run.validate

        def validate(self, epoch):
            if epoch == int(argument):
                pause(point)
            return original_validate(self, epoch)
        Run.validate = validate
    elif phase == "weights":
        original_save = keras.Model.save_weights

        def save_weights(self, path, *args, **kwargs):
            original_save(self, path, *args, **kwargs)
            if Path(path).parent.name.startswith(f".{argument}."):
                pause(point)
        keras.Model.save_weights = save_weights
    elif phase == "rename":
        original_replace = weights_folder.os.replace

        def replace(source, target):
            original_replace(source, target)
            if Path(target).name == f".{argument}.old":
                pause(point)
        weights_folder.os.replace = replace
    else:
        raise SystemExit(f"MONODEPTH_PAUSE: unknown phase {phase!r}")


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT_ROOT))
    if os.environ.get("MONODEPTH_PAUSE"):
        install(*os.environ["MONODEPTH_PAUSE"].split(":", 1))
    sys.argv = [str(PROJECT_ROOT / "bin" / "train"), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
