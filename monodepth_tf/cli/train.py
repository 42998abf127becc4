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
import json
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np
from absl import app, flags

from monodepth_tf.cli.common import run_tool
from monodepth_tf.cli.launch import define_verbose_flag
from monodepth_tf.data.images import load_rgb
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.splits import read_split
from monodepth_tf.files import check_output_folder
from monodepth_tf.training import options as options_lib
from monodepth_tf.training.logging import METRICS_FILE
from monodepth_tf.training.resume import check_resume

FLAGS = flags.FLAGS  # the training flags are defined by run(), so importing defines nothing

# bin/train --help: the training flags by topic (monodepth_tf.cli.help)
HELP_GROUPS = {
    "Data": ["mode", "data_path", "dataset", "split", "split_dir", "png", "height", "width",
             "frame_ids", "use_stereo", "frame_stride", "target_fps", "skip_static",
             "num_workers"],
    "Networks": ["num_layers", "weights_init", "pretrained_base", "pose_model_type",
                 "pose_model_input", "load_weights_folder", "models_to_load", "model_zoo",
                 "model_zoo_pose"],
    "Loss": ["scales", "min_depth", "max_depth", "disparity_smoothness", "v1_multiscale",
             "avg_reprojection", "disable_automasking", "predictive_mask", "no_ssim",
             "exact_loss"],
    "Optimization": ["batch_size", "learning_rate", "num_epochs", "scheduler_step_size",
                     "max_steps", "seed", "deterministic", "mixed_precision", "jit_compile",
                     "gpu"],
    "Run folder, logs and checkpoints": ["log_dir", "model_name", "log_frequency",
                                         "save_frequency", "save_steps", "val_samples",
                                         "verbose"],
}

# What the demo run (no --data_path) changes, unless the flag is given (mode: mono_stereo,
# which learns from scratch in a few minutes; --mode=mono learns more slowly).
DEMO = dict(mode="mono_stereo", height=64, width=192, batch_size=4, max_steps=300,
            weights_init="scratch", learning_rate=2.5e-4, log_frequency=10, num_epochs=1000,
            png=True, split="synthetic")
# 4 drives of 50 frames: 258 training samples and 9 val frames (3 per drive; with 4 val frames
# the best abs_rel was mostly noise), one held-out test drive. 64x192 buys 3x the steps.
DEMO_WORLD = dict(num_drives=4, frames_per_drive=50)


def apply_demo_defaults(values) -> Path:
    """Generates (once, at the feed size) a synthetic world under the log directory, points
    the data flags at it and sets the DEMO values of the flags not given (as if given, so
    that the mode preset does not replace them); returns the world's folder."""
    from monodepth_tf.synthetic import make_synthetic_kitti

    for name, value in DEMO.items():
        if name == "weights_init" and values["pretrained_base"].present:
            continue  # GluonCV's spelling of --weights_init
        if not values[name].present:
            values[name].value = value
            values[name].present = 1
    root = Path(values.log_dir or options_lib.TrainOptions.log_dir).expanduser() / "synthetic_kitti"
    if not (root / "splits" / "synthetic" / "gt_depths.npz").is_file():
        print(f"no --data_path: generating a synthetic KITTI-format world in {root}")
        make_synthetic_kitti(root, seed=values.seed, height=values.height, width=values.width,
                             **DEMO_WORLD)
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
    from monodepth_tf.weights import zoo

    folder = zoo.find_weights(options.load_weights_folder)
    return dataclasses.replace(options, load_weights_folder=str(folder))


def read_metrics(run_dir: Path) -> List[dict]:
    """The validations a run appended to ``metrics.jsonl``, in order."""

    path = run_dir / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def demo_test_frame(world: Path, index: int = 0):
    """Test frame ``index`` of a synthetic world: (its image file, its exact depth
    ``[H, W]`` in metres)."""


    entry = read_split(world / "splits", "synthetic", "test")[index]
    path = KittiRawLayout(world, "png").image_path(entry.folder, entry.frame_index, entry.side)
    return path, np.load(world / "splits" / "synthetic" / "gt_depths.npz")["data"][index]


def demo_picture(run_dir: Path, world: Path, weights: Path, index: int = 0) -> Path:
    """Writes ``<run_dir>/demo.png``: test frame ``index`` of the synthetic world, the
    disparity that ``weights`` predict for it and its exact depth (magma of the inverse
    depth, drawn like the disparity), side by side at the frame's size; returns its path.

    The disparity is resized to the frame's size (bilinear) when the network's feed size
    differs.
    """

    from monodepth_tf.inference.predictor import predict_disparity
    from monodepth_tf.training.summaries import depth_images, disparity_images, side_by_side
    from monodepth_tf.weights.folder import load_networks

    frame, gt = demo_test_frame(world, index)
    image = load_rgb(frame)
    config, depth_net, _ = load_networks(weights, with_pose=False)
    disp = predict_disparity(depth_net, config, [image])[0]
    height, width = image.shape[:2]
    if disp.shape != (height, width):
        disp = cv2.resize(disp, (width, height), interpolation=cv2.INTER_LINEAR)
    picture = side_by_side([image, disparity_images(disp[None])[0], depth_images(gt[None])[0]])
    path = run_dir / "demo.png"
    cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return path


def demo_summary(run_dir: Path, world: Path) -> str:
    """What the demo run learned (untrained and best val abs_rel), where its weights are and
    how to try them; also writes the picture (:func:`demo_picture`)."""
    metrics = [m for m in read_metrics(run_dir) if "abs_rel" in m]
    untrained = next((m for m in metrics if m["epoch"] == -1), None)
    trained = [m for m in metrics if m["epoch"] >= 0]
    weights = run_dir / "models" / ("weights_best" if trained else "weights_final")
    lines = []
    if untrained and trained:
        best = min(trained, key=lambda m: m["abs_rel"])
        lines.append(f"val abs_rel: untrained {untrained['abs_rel']:.3f} -> best "
                     f"{best['abs_rel']:.3f} (epoch {best['epoch']}, "
                     f"{best['abs_rel'] / untrained['abs_rel']:.2f}x)")
    picture = demo_picture(run_dir, world, weights)
    frame, _ = demo_test_frame(world)
    lines += [f"weights: {weights}",
              f"picture: {picture} (a test frame, its predicted disparity, its exact depth)",
              f"try them: bin/predict --load_weights_folder {weights} --image_path {frame} "
              f"--output_dir {run_dir / 'predictions'}"]
    return "\n".join(lines)


def quiet_python_logs(values) -> None:
    """Unless ``--verbose`` or absl's ``--verbosity`` is given, TensorFlow's and absl's Python
    INFO lines (strategy devices, checkpoint sharding times) are not shown; the run's own log
    is unaffected."""
    import logging

    from absl import logging as absl_logging

    if values.verbose or values["verbosity"].present:
        return
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


def main(argv):
    del argv
    from monodepth_tf.training.loop import Run, open_data

    quiet_python_logs(FLAGS)

    if not FLAGS.data_path and FLAGS.model_zoo:  # a GluonCV command: GluonCV's data folder
        FLAGS.data_path = str(GLUONCV_DATA_PATH.expanduser())
        if not Path(FLAGS.data_path).is_dir():
            raise options_lib.OptionsError(
                f"--model_zoo without --data_path reads KITTI where GluonCV keeps it, "
                f"{FLAGS.data_path}, which does not exist: pass --data_path")
    log_dir = check_output_folder(FLAGS.log_dir or options_lib.TrainOptions.log_dir, "--log_dir")
    check_output_folder(log_dir / FLAGS.model_name, "--model_name")
    world: Optional[Path] = None
    if not FLAGS.data_path and FLAGS.dataset != "folder":  # folder: options name the flag
        world = apply_demo_defaults(FLAGS)
    options = with_weights_folder(options_lib.from_flags(FLAGS))
    check_resume(options, options.run_dir)  # an incompatible resume stops before data loads
    run = Run(options, open_data(options))
    outcome = run.train()
    print(f"{outcome}: run folder {options.run_dir}")
    if outcome != "done":
        raise SystemExit(1)
    if world is not None:
        print(demo_summary(options.run_dir, world))


def run():
    options_lib.define_training_flags()
    define_verbose_flag()  # also read by quiet_python_logs
    run_tool(main, flags_parser=parse_flags)
