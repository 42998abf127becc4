"""Does training learn? mono_stereo from scratch on the synthetic world, scored on its exact depth.

    .venv/bin/python benchmarks/learn_synthetic.py [--steps 300] [--seed 0] [--height 64]
        [--width 192] [--learning_rate 5e-4] [--mode mono_stereo|stereo|mono]

Prints abs_rel and a1 (median-scaled, against the exact depth of the held-out drive) of the
best constant prediction, the untrained network, and the network after training, as a table.
tests/test_learning.py asserts the same comparison for one seed and fewer steps.

From scratch, a learning rate of 1e-3 tends to drive the sigmoid disparity into saturation at 0
within the first epoch (the prediction becomes constant, abs_rel that of the constant); 5e-4
does not, hence the default.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from monodepth_tf.data.kitti import KittiRawLayout, read_split  # noqa: E402
from monodepth_tf.data.synthetic import make_synthetic_kitti  # noqa: E402
from monodepth_tf.evaluation import constant_depth_errors, evaluate_split  # noqa: E402
from monodepth_tf.options import TrainOptions  # noqa: E402
from monodepth_tf.train_loop import DataSource, Run  # noqa: E402
from monodepth_tf.weights.folder import NetworkConfig, load_networks  # noqa: E402


def learn(root: Path, steps: int, height: int, width: int, seed: int = 0,
          learning_rate: float = 5e-4, disable_automasking: bool = False,
          mode: str = "mono_stereo") -> dict:
    """Generates a world under ``root``, trains, and returns {name: summary}."""
    world = root / "world"
    make_synthetic_kitti(world, seed=seed, num_drives=3, frames_per_drive=40, height=height,
                         width=width)
    layout = KittiRawLayout(world, "png")
    splits = world / "splits"
    test = read_split(splits, "synthetic", "test")
    gt = np.load(splits / "synthetic" / "gt_depths.npz", allow_pickle=True)["data"]
    options = TrainOptions(data_path=str(world), split="synthetic", png=True, height=height,
                           width=width, batch_size=4, weights_init="scratch",
                           use_stereo=mode != "mono",
                           frame_ids=(0,) if mode == "stereo" else (0, -1, 1),
                           learning_rate=learning_rate, num_epochs=10_000,
                           disable_automasking=disable_automasking, max_steps=steps, seed=seed,
                           log_dir=str(root), model_name="learn", log_frequency=50).validate()
    keras.utils.set_random_seed(seed)
    run = Run(options, DataSource(layout, read_split(splits, "synthetic", "train"), []))
    feed = NetworkConfig(height=height, width=width)
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
    parser.add_argument("--learning_rate", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--disable_automasking", action="store_true")
    parser.add_argument("--mode", default="mono_stereo", choices=["mono", "stereo", "mono_stereo"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = learn(Path(tmp), args.steps, args.height, args.width, args.seed,
                        args.learning_rate, args.disable_automasking, args.mode)
    print("\n| prediction | abs_rel | a1 |\n| --- | --- | --- |")
    for name, summary in results.items():
        print(f"| {name} | {summary['abs_rel']:.3f} | {summary['a1']:.3f} |")


if __name__ == "__main__":
    main()
