"""bin/train: trains Monodepth2 (mono, stereo or mono+stereo) on KITTI or a synthetic world.

    bin/train --mode=mono --data_path ~/kitti_data --png
    bin/train                        # no data flags: a short demo run on a synthetic world

Every option of the original's training script is a flag with the same name and default; see
``bin/train --helpfull``.
"""

from pathlib import Path

from absl import flags

from monodepth_tf import options as options_lib
from monodepth_tf.cli.common import run_tool

options_lib.define_training_flags()
FLAGS = flags.FLAGS

# What the demo run (no --data_path) changes, unless the flag is given.
DEMO = dict(height=96, width=320, batch_size=4, max_steps=60, weights_init="scratch",
            learning_rate=1e-3, log_frequency=10, num_epochs=5, png=True, split="synthetic")
DEMO_WORLD = dict(num_drives=1, frames_per_drive=40)


def apply_demo_defaults(values) -> Path:
    """Generates (once) a synthetic world under the log directory and points the data flags at
    it; returns its folder."""
    from monodepth_tf.data.synthetic import make_synthetic_kitti

    for name, value in DEMO.items():
        if not values[name].present:
            values[name].value = value
    root = Path(values.log_dir or options_lib.TrainOptions.log_dir).expanduser() / "synthetic_kitti"
    if not (root / "splits" / "synthetic" / "gt_depths.npz").is_file():
        print(f"no --data_path: generating a synthetic KITTI-format world in {root}")
        make_synthetic_kitti(root, seed=values.seed, **DEMO_WORLD)
    values.data_path = str(root)
    values.split_dir = str(root / "splits")
    return root


def main(argv):
    del argv
    from monodepth_tf.train_loop import Run, open_data

    if not FLAGS.data_path:
        apply_demo_defaults(FLAGS)
    options = options_lib.from_flags(FLAGS)
    run = Run(options, open_data(options))
    outcome = run.train()
    print(f"{outcome}: run folder {options.run_dir}")
    if outcome != "done":
        raise SystemExit(1)


def run():
    run_tool(main)
