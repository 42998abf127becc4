"""Does training learn? mono_stereo from scratch on the synthetic world, scored on its exact depth.

    .venv/bin/python benchmarks/learn_synthetic.py [--steps 300] [--seeds 0,1,2] [--height 64]
        [--width 192] [--learning_rate 2.5e-4] [--mode mono_stereo|stereo|mono]
        [--mixed_precision bfloat16] [--json FILE]

Prints abs_rel and a1 (median-scaled, against the exact depth of the held-out drive) of the
best constant prediction, the untrained network, and the network after training from each
training seed (the world is always seed 0), as a table. Training runs with --deterministic, so
a seed's result is reproducible on a given machine. tests/test_learning.py asserts the same
comparison for seeds 0, 1 and 2 and 80 steps.

With PyTorch's default initialization alone, training from scratch was fragile in
mono_stereo. The sigmoid disparity then starts at ~0.5 everywhere, i.e. depth 0.2 (~1 m with
KITTI's baseline): the stereo warp is tens of pixels off and loses the per-pixel minimum to the
nearly unwarped temporal sources almost everywhere, so early on the depth moves with the
temporal terms, whose poses are still random, and one seed in six stayed at a constant or
saturated depth. Measured at 64x192 before the fix (abs_rel; constant 0.616; before
--deterministic existed, so each run was one draw of TensorFlow's run-to-run differences):

| learning rate | steps | seed 0 | 1 | 2 | 3 | 4 | 5 |
| --- | --- | --- | --- | --- | --- | --- | --- |
| 5e-4 | 150-300 | 0.209 | 0.186* | 0.277 | 0.616 | 0.616 | |
| 2.5e-4 | 150 (200) | 0.62 | 0.189 | 0.255 | 0.253 (0.231) | 0.195 (0.192) | 0.220 |

(* world seed 1, constant 0.537.) 0.616 is a sigmoid saturated within the first epoch; 0.62 at
2.5e-4 a prediction that stayed nearly constant; 1e-3 saturated at 0 (everything at
max_depth).

The fix: a scratch run starts the disparity heads' bias at logit(0.03)
(training.checkpoints.SCRATCH_DISPARITY: depth ~3, 17 m, a few pixels of stereo disparity at this
size),
so the stereo warp is near right from the first step. With it, --deterministic, 150 steps at
2.5e-4 (this script's defaults but --steps 150; tests/test_learning.py asserts seeds 0-2):

| training seed | 0 | 1 | 2 |
| --- | --- | --- | --- |
| abs_rel (a1) | 0.223 (0.737) | 0.204 (0.745) | 0.206 (0.775) |
| 80 steps, 2026-12-03 | 0.206 (0.761) | 0.216 (0.750) | 0.234 (0.676) |

Untrained 0.617-0.619. Seed 0 along the way (abs_rel after 50, 100, 150 steps, bias logit
-3.5 set by hand): 0.257, 0.227, 0.235 at 2.5e-4; 0.432, 0.312, 0.316 at 1e-3 (learns, no
longer saturates, but more slowly). Without the fix (from 0.5), seed 0 at 2.5e-4 with
--deterministic: 0.596, 0.520, 0.235, 0.228, 0.191 after 30, 60, 90, 120, 150 steps: it sat
near the constant for ~60 steps before it learned. Hence 2.5e-4 here.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import monodepth_tf  # noqa: E402,F401  (before TensorFlow: oneDNN on, as in bin/)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from monodepth_tf.config import ModelConfig
from monodepth_tf.data.images import load_rgb  # noqa: E402
from monodepth_tf.data.kitti import KittiRawLayout  # noqa: E402
from monodepth_tf.data.splits import read_split  # noqa: E402
from monodepth_tf.synthetic import make_synthetic_kitti  # noqa: E402
from monodepth_tf.evaluation.depth import (  # noqa: E402
    constant_depth_errors, evaluate_disparities, summarize)
from monodepth_tf.inference.predictor import predict_disparity  # noqa: E402
from monodepth_tf.training.loop import DataSource, Run  # noqa: E402
from monodepth_tf.training.options import TrainOptions  # noqa: E402
from monodepth_tf.weights.folder import load_networks  # noqa: E402
from benchmarks.machine import machine_fields  # noqa: E402


def evaluate_split(depth_net, config, layout, entries, gt_depths) -> dict:
    """Predicts every test image of a split and scores it against its ground truth (median
    scaling, no Garg crop: the synthetic world's protocol).

    Args:
        depth_net, config: a depth network and its config (feed size, depth range).
        layout: a ``KittiRawLayout``; entries: the split's test entries.
        gt_depths: the ground-truth maps, in the entries' order.

    Returns:
        :func:`summarize` of the per-image results.
    """
    images = (load_rgb(layout.image_path(e.folder, e.frame_index, e.side)) for e in entries)
    disps = predict_disparity(depth_net, config, images)
    return summarize(evaluate_disparities(disps, gt_depths, garg_crop=False), median_scaling=True)


def make_world(root: Path, height: int, width: int, world_seed: int = 0) -> Path:
    """Generates the world the runs learn from (3 drives of 40 frames at ``height`` x
    ``width``) in ``root/world``; returns that folder. Every training seed can share it."""
    world = root / "world"
    make_synthetic_kitti(world, seed=world_seed, num_drives=3, frames_per_drive=40, height=height,
                         width=width)
    return world


def learn(world: Path, root: Path, steps: int, seed: int = 0, learning_rate: float = 2.5e-4,
          disable_automasking: bool = False, mode: str = "mono_stereo", exact_loss: bool = False,
          mixed_precision=None) -> dict:
    """Trains from scratch on ``world`` (:func:`make_world`, at the feed size) with ``seed``
    into ``root`` (``exact_loss``: ``bin/train --exact_loss``; ``mixed_precision``: its
    ``--mixed_precision``), and returns ``{name: summary}`` for the best constant, the
    untrained and the trained network. Weights are written at the end only."""
    layout = KittiRawLayout(world, "png")
    splits = world / "splits"
    test = read_split(splits, "synthetic", "test")
    gt = np.load(splits / "synthetic" / "gt_depths.npz", allow_pickle=True)["data"]
    height, width = load_rgb(layout.image_path(test[0].folder, test[0].frame_index,
                                               test[0].side)).shape[:2]
    options = TrainOptions(data_path=str(world), split="synthetic", png=True, height=height,
                           width=width, batch_size=4, weights_init="scratch",
                           use_stereo=mode != "mono",
                           frame_ids=(0,) if mode == "stereo" else (0, -1, 1),
                           learning_rate=learning_rate, num_epochs=10_000,
                           disable_automasking=disable_automasking, max_steps=steps, seed=seed,
                           deterministic=True, exact_loss=exact_loss,
                           mixed_precision=mixed_precision, save_frequency=10_000,
                           log_dir=str(root), model_name="learn", log_frequency=50).validate()
    keras.utils.set_random_seed(seed)
    run = Run(options, DataSource(layout, read_split(splits, "synthetic", "train"), []))
    run.initialize()  # as train() starts: the scratch disparity initialization
    feed = ModelConfig(height=height, width=width)
    untrained = evaluate_split(run.system.depth, feed, layout, test, gt)
    run.train()
    config, depth, _ = load_networks(root / "learn" / "models" / "weights_final", with_pose=False)
    return {"constant depth": constant_depth_errors(gt), "untrained": untrained,
            f"trained {steps} steps": evaluate_split(depth, config, layout, test, gt)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--learning_rate", type=float, default=2.5e-4)
    parser.add_argument("--seeds", default="0",
                        help="comma-separated training seeds, one run each (the world is seed 0)")
    parser.add_argument("--disable_automasking", action="store_true")
    parser.add_argument("--mode", default="mono_stereo", choices=["mono", "stereo", "mono_stereo"])
    parser.add_argument("--mixed_precision", choices=["bfloat16", "float16"],
                        help="train the networks in this precision (bin/train's flag)")
    parser.add_argument("--exact_loss", action="store_true",
                        help="the loss with the original's roundings (bin/train --exact_loss)")
    parser.add_argument("--json", help="append one JSON line per trained seed to this file")
    args = parser.parse_args()
    rows = []
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        world = make_world(Path(tmp), args.height, args.width)
        for seed in seeds:
            results = learn(world, Path(tmp) / f"seed_{seed}", args.steps, seed,
                            args.learning_rate, args.disable_automasking, args.mode,
                            exact_loss=args.exact_loss, mixed_precision=args.mixed_precision)
            rows += [(seed, name, summary) for name, summary in results.items()
                     if seed == seeds[0] or name.startswith("trained")]
    print(f"\n{args.mode}, {args.height}x{args.width}, learning rate {args.learning_rate:g}, "
          f"{args.mixed_precision or 'float32'}")
    print("\n| training seed | prediction | abs_rel | a1 |\n| --- | --- | --- | --- |")
    for seed, name, summary in rows:
        print(f"| {seed} | {name} | {summary['abs_rel']:.3f} | {summary['a1']:.3f} |")
    if args.json:
        write_rows(args, rows)


def write_rows(args, rows) -> None:
    """Appends one JSON line per trained seed (with the best constant's abs_rel) to
    ``args.json``."""
    constant = next(s for _, name, s in rows if name == "constant depth")
    with open(args.json, "a") as f:
        for seed, name, summary in rows:
            if name.startswith("trained"):
                f.write(json.dumps(dict(
                    benchmark=f"learn_synthetic.py --steps {args.steps}", mode=args.mode,
                    height=args.height, width=args.width, learning_rate=args.learning_rate,
                    deterministic=True, precision=args.mixed_precision or "float32", seed=seed,
                    abs_rel=round(float(summary["abs_rel"]), 3),
                    a1=round(float(summary["a1"]), 3),
                    constant_abs_rel=round(float(constant["abs_rel"]), 3),
                    **machine_fields())) + "\n")


if __name__ == "__main__":
    main()
