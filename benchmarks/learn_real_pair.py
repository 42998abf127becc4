"""Does stereo training from scratch learn on a real KITTI pair, on every seed?

    .venv/bin/python benchmarks/learn_real_pair.py [--seeds 0,1,2] [--steps 400]
        [--learning_rate 1e-3] [--height 192 --width 640] [--mixed_precision bfloat16] [--json FILE]

Issue 14 reported that stereo training from scratch on one real pair (400 steps at 1e-3)
learned its depth on some seeds and ended at a constant depth on others, in this project and in
the original alike. This trains ``bin/train --mode=stereo``'s Trainer (the data pipeline with its
flips and colour jitter, batch 2: the left and the right view) on the real frame of
../shared/kitti/raw from scratch, once per training seed, and scores the left view's depth
against its LiDAR ground truth (../shared/kitti/reference, the original's projection) by the
Eigen protocol: Garg crop, and both with the stereo scale factor 5.4 (the original's protocol
for stereo models) and with median scaling. Baselines: the best constant depth and the untrained
network. Prints a table; with ``--json`` appends one JSON line per seed.
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

from benchmarks.machine import machine_fields  # noqa: E402
from monodepth_tf.config import ModelConfig  # noqa: E402
from monodepth_tf.data.images import load_rgb  # noqa: E402
from monodepth_tf.data.kitti import KittiRawLayout  # noqa: E402
from monodepth_tf.data.layout import STEREO_SCALE_FACTOR  # noqa: E402
from monodepth_tf.data.splits import SplitEntry  # noqa: E402
from monodepth_tf.evaluation.depth import (  # noqa: E402
    constant_depth_errors, evaluate_disparities, summarize)
from monodepth_tf.inference.predictor import predict_disparity  # noqa: E402
from monodepth_tf.training.loop import DataSource, Run  # noqa: E402
from monodepth_tf.training.options import TrainOptions  # noqa: E402

SHARED_KITTI = Path(__file__).resolve().parents[2] / "shared" / "kitti"
DRIVE, FRAME = "2011_09_26/2011_09_26_drive_0000_sync", 1
GT_FILE = "reference/gt_depth_2011_09_26_drive_0000_0000000001.npz"


def scores(depth_net, config, image, gt) -> dict:
    """abs_rel and a1 of one prediction, with the stereo scale factor and median-scaled."""
    disp = predict_disparity(depth_net, config, [image])[0]
    stereo = summarize(evaluate_disparities([disp], [gt], garg_crop=True, median_scaling=False,
                                            scale_factor=STEREO_SCALE_FACTOR), False)
    median = summarize(evaluate_disparities([disp], [gt], garg_crop=True), True)
    return dict(abs_rel=round(stereo["abs_rel"], 4), a1=round(stereo["a1"], 4),
                median_abs_rel=round(median["abs_rel"], 4), median_a1=round(median["a1"], 4),
                disp_spread=round(float(np.std(disp) / np.mean(disp)), 4))


def learn_pair(root: Path, seed: int, steps: int, learning_rate: float, height: int,
               width: int, mixed_precision=None) -> dict:
    """Trains from scratch with ``seed`` on the real pair; the untrained and trained scores."""
    layout = KittiRawLayout(SHARED_KITTI / "raw", "png")
    # the pair repeated: epochs of half the steps (an epoch's end writes a checkpoint)
    entries = [SplitEntry(DRIVE, FRAME, side) for side in ("l", "r")] * steps
    options = TrainOptions(data_path=str(SHARED_KITTI / "raw"), png=True, height=height,
                           width=width, batch_size=2, weights_init="scratch", use_stereo=True,
                           frame_ids=(0,), learning_rate=learning_rate, num_epochs=100_000,
                           max_steps=steps, seed=seed, log_dir=str(root), model_name="pair",
                           log_frequency=100, mixed_precision=mixed_precision).validate()
    keras.utils.set_random_seed(seed)
    run = Run(options, DataSource(layout, entries, []))
    run.initialize()  # the scratch initialization, as bin/train starts
    feed = ModelConfig(height=height, width=width)
    image = load_rgb(layout.image_path(DRIVE, FRAME, "l"))
    gt = np.load(SHARED_KITTI / GT_FILE)["cam2"]
    untrained = scores(run.system.depth, feed, image, gt)
    run.train()
    return dict(untrained=untrained, trained=scores(run.system.depth, feed, image, gt),
                constant_median_abs_rel=round(constant_depth_errors([gt], True)["abs_rel"], 4))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--mixed_precision", choices=["bfloat16", "float16"],
                        help="train the networks in this precision (bin/train's flag)")
    parser.add_argument("--json", help="append one JSON line per seed to this file")
    args = parser.parse_args()
    print("| seed | untrained abs_rel (x5.4) | trained abs_rel (x5.4) | a1 | median-scaled "
          "abs_rel | disparity spread | best constant (median) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            result = learn_pair(Path(tmp), seed, args.steps, args.learning_rate, args.height,
                                args.width, args.mixed_precision)
        u, t = result["untrained"], result["trained"]
        print(f"| {seed} | {u['abs_rel']:.3f} | {t['abs_rel']:.3f} | {t['a1']:.3f} | "
              f"{t['median_abs_rel']:.3f} | {t['disp_spread']:.3f} | "
              f"{result['constant_median_abs_rel']:.3f} |", flush=True)
        if args.json:
            with open(args.json, "a") as out:
                out.write(json.dumps(dict(seed=seed, steps=args.steps,
                                          precision=args.mixed_precision or "float32",
                                          learning_rate=args.learning_rate, height=args.height,
                                          width=args.width, **result, **machine_fields()))
                          + "\n")


if __name__ == "__main__":
    main()
