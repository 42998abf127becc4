"""A long training run watched for leaks: resident memory every 100 steps, and whether any
tf.function traces again after the first epoch (issue 15's soak).

    python benchmarks/soak.py [--steps 2000] [--workdir /tmp/soak] [--json soak.jsonl]

Trains mono_stereo from scratch at 64x192 (batch 2) on a small synthetic world (two 40-frame
drives, the second the test drive), so that epochs are short: every epoch's end validates (8
samples), checkpoints and writes a weights folder, and the soak covers those paths many
times. Prints one row per 100 steps: resident memory (VmRSS) and the traces of the train step
and of the inference pass (validation and the logged images); then the growth from step 200
(after the first epochs' allocations settle) to the end, and the traces made after the first
epoch.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import monodepth_tf  # noqa: E402,F401  (before TensorFlow: oneDNN on, as in bin/)

from monodepth_tf.data.kitti import KittiRawLayout  # noqa: E402
from monodepth_tf.data.splits import read_split  # noqa: E402
from monodepth_tf.synthetic import make_synthetic_kitti  # noqa: E402
from monodepth_tf.training.loop import Run  # noqa: E402
from monodepth_tf.training.options import TrainOptions  # noqa: E402
from monodepth_tf.training.step import Trainer  # noqa: E402


def resident_mb() -> float:
    """This process's resident memory (VmRSS), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def trace_counts(run: Run) -> dict:
    """How many times each of the run's tf.functions has been traced."""
    functions = {"train_step": run.trainer._train_step,
                 "validation and images": run.inference.function}
    return {name: f.experimental_get_tracing_count() for name, f in functions.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/soak"))
    parser.add_argument("--json", type=Path, help="also write the rows as JSON lines here")
    args = parser.parse_args()

    world = args.workdir / "world"
    if not (world / "splits").exists():
        make_synthetic_kitti(world, seed=0, num_drives=2, frames_per_drive=40, height=64,
                             width=192)
    splits = world / "splits"
    from monodepth_tf.training.loop import DataSource

    options = TrainOptions(data_path=str(world), split="synthetic", png=True, height=64,
                           width=192, batch_size=2, weights_init="scratch", num_epochs=10_000,
                           max_steps=args.steps, log_dir=str(args.workdir), model_name="soak",
                           log_frequency=250, val_samples=8).validate()
    run = Run(options, DataSource(KittiRawLayout(world, "png"),
                                  read_split(splits, "synthetic", "train"),
                                  read_split(splits, "synthetic", "val")))
    rows, started = [], time.time()
    original_step = Trainer.train_step

    def watched_step(trainer, batch):
        result = original_step(trainer, batch)
        step = int(trainer.iterations.numpy())
        if step % args.every == 0 or step == 1:
            row = dict(step=step, epoch=step // run.steps_per_epoch,
                       rss_mb=round(resident_mb(), 1), traces=trace_counts(run),
                       seconds=round(time.time() - started, 1))
            rows.append(row)
            print(json.dumps(row), flush=True)
        return result

    Trainer.train_step = watched_step
    try:
        outcome = run.train()
    finally:
        Trainer.train_step = original_step
    after_first_epoch = [r for r in rows if r["epoch"] >= 1]
    settled = [r for r in rows if r["step"] >= 200]
    summary = dict(outcome=outcome, steps=args.steps, steps_per_epoch=run.steps_per_epoch,
                   rss_mb_at_200=settled[0]["rss_mb"] if settled else None,
                   rss_mb_at_end=rows[-1]["rss_mb"],
                   growth_mb=round(rows[-1]["rss_mb"] - settled[0]["rss_mb"], 1)
                   if settled else None,
                   traces_after_first_epoch={
                       name: count - after_first_epoch[0]["traces"].get(name, 0)
                       for name, count in after_first_epoch[-1]["traces"].items()}
                   if after_first_epoch else None)
    print(json.dumps(summary, indent=1))
    if args.json:
        with args.json.open("a") as out:
            for row in rows + [summary]:
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
