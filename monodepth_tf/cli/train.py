"""bin/train: trains Monodepth2 (mono, stereo or mono+stereo) on KITTI or a synthetic world.

    bin/train --mode=mono --data_path ~/kitti_data --png
    bin/train                        # no data flags: a short demo run on a synthetic world

Every option of the original's training script is a flag with the same name and default; see
``bin/train --helpfull``. Lists may be given as the original and the GluonCV port take them
(``--frame_ids 0 -1 1``) or as absl does (``--frame_ids=0,-1,1``). The GluonCV tutorial's
commands run as written: ``--model_zoo`` names the architecture, and without ``--data_path``
the data is read where GluonCV keeps it (``~/.mxnet/datasets/kitti/kitti_data``).
``--load_weights_folder`` also takes a released model's name, to fine-tune it:

    bin/train --mode=mono --data_path ~/kitti_data --load_weights_folder mono_640x192
"""

import dataclasses
from pathlib import Path
from typing import List

from absl import app, flags

from monodepth_tf import options as options_lib
from monodepth_tf.cli.common import run_tool

FLAGS = flags.FLAGS  # the training flags are defined by run(), so importing defines nothing

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


# Flags that take several values; written "--name a b c" by the original's and GluonCV's users.
LIST_FLAGS = ("frame_ids", "scales", "models_to_load")
GLUONCV_DATA_PATH = Path("~/.mxnet/datasets/kitti/kitti_data")


def join_list_arguments(argv: List[str]) -> List[str]:
    """``--frame_ids 0 -1 1`` -> ``--frame_ids=0,-1,1`` (values run to the next ``--`` flag)."""
    joined, i = [], 0
    while i < len(argv):
        name = argv[i][2:] if argv[i].startswith("--") else None
        i += 1
        if name not in LIST_FLAGS:
            joined.append(argv[i - 1])
            continue
        values = []
        while i < len(argv) and not argv[i].startswith("--"):
            values.append(argv[i])
            i += 1
        joined.append(f"--{name}={','.join(values)}")
    return joined


def parse_flags(argv: List[str]) -> List[str]:
    return app.parse_flags_with_usage(join_list_arguments(argv))


def with_weights_folder(options: options_lib.TrainOptions) -> options_lib.TrainOptions:
    """The options with ``--load_weights_folder`` a folder: a model name given there (e.g.
    ``mono_640x192``, to fine-tune a released model) is downloaded on first use and replaced by
    its cached folder; an existing folder always wins."""
    if not options.load_weights_folder:
        return options
    from monodepth_tf import zoo

    folder = zoo.find_weights(options.load_weights_folder)
    return dataclasses.replace(options, load_weights_folder=str(folder))


def main(argv):
    del argv
    from monodepth_tf.train_loop import Run, open_data

    if not FLAGS.data_path and FLAGS.model_zoo:  # a GluonCV command: GluonCV's data folder
        FLAGS.data_path = str(GLUONCV_DATA_PATH.expanduser())
        if not Path(FLAGS.data_path).is_dir():
            raise options_lib.OptionsError(
                f"--model_zoo without --data_path reads KITTI where GluonCV keeps it, "
                f"{FLAGS.data_path}, which does not exist: pass --data_path")
    if not FLAGS.data_path and FLAGS.dataset != "folder":  # folder: options name the flag
        apply_demo_defaults(FLAGS)
    options = with_weights_folder(options_lib.from_flags(FLAGS))
    run = Run(options, open_data(options))
    outcome = run.train()
    print(f"{outcome}: run folder {options.run_dir}")
    if outcome != "done":
        raise SystemExit(1)


def run():
    options_lib.define_training_flags()
    run_tool(main, flags_parser=parse_flags)
