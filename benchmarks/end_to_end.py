"""End-to-end training speed: ``bin/train`` on a KITTI-format folder, against its step alone and
against the original's Trainer with its DataLoader. (Issue 17: end to end within 10% of the
step alone, and at least 1.5x the original's samples/s end to end.)

    python benchmarks/end_to_end.py [--mode mono|stereo|mono_stereo] [--steps 96] [--batch 4]
                                    [--height 192 --width 640] [--rounds 1]
                                    [--workdir /tmp/end_to_end_bench] [--json results.jsonl]
                                    [--mixed_precision bfloat16]
                                    [--original_python PY --original_ref DIR]

Generates, once (reused from ``--workdir`` afterwards), a synthetic KITTI-format world at the
feed size (bin/train's demo world: 4 drives of 50 stereo frames, PNG; 258 training samples,
64 steps per epoch at batch 4, 9 val frames), then every round:

1. with ``--original_python`` and ``--original_ref`` (see benchmarks/original.py), the
   original's Trainer, dataset and DataLoader (2 workers) on the same world
   (../shared/bench/original_end_to_end.py: each batch timed from the end of the previous step,
   so the loader's wait counts; the mean over ``--original_batches`` batches after 3);
2. ``bin/train`` as a user runs it (``--data_path <world> --split_dir <world>/splits --split
   synthetic --png --weights_init scratch --max_steps STEPS``, the other flags at their
   defaults), from a fresh run folder: ``--steps`` must pass an epoch's end, so the run
   validates, writes a weight folder and a checkpoint there and again at its end. The run's
   ``timings.jsonl`` (monodepth_tf/training/timings.py) gives the sustained samples/s (every
   step after the first, the wait for its batch and its log line included; validations,
   checkpoints, weight folders and images apart) and the seconds of each phase;
3. the training step alone on an in-memory batch (benchmarks/train_step.py's ``measure``, in a
   fresh process, median of ``--step_repeats`` steps after 2).

Reports per round: our sustained samples/s, the ratio to the step alone, the shares of the
command's wall time (start-up: imports, building, the world's check; the first step: tracing;
the steps; validation; checkpoints; weight folders), the seconds per checkpoint and per weight
folder, the original's samples/s and ours over it; and the peak resident memory
(benchmarks/memory.py) of our training process, of the step alone, and of the original's main
process (its DataLoader workers, processes of their own, not counted). Prints a Markdown table
and one JSON line per round; ``--json`` appends the rows to a file.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_fields  # noqa: E402
from benchmarks.original import add_original_flags, check_original, run_original  # noqa: E402
from monodepth_tf.cli.train import DEMO_WORLD  # noqa: E402
from monodepth_tf.synthetic import make_synthetic_kitti  # noqa: E402
from monodepth_tf.training.options import MODES  # noqa: E402
from monodepth_tf.training.timings import PHASES, TIMINGS_FILE  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MEMORY_RUNNER = PROJECT_ROOT / "benchmarks" / "memory.py"
ORIGINAL_WARMUP = 3  # batches the original's figure leaves out (tracing-free, but the loader
                     # and the allocator start there)


def synthetic_world(workdir: Path, height: int, width: int) -> Path:
    """The world at ``height`` x ``width`` under ``workdir`` (generated the first time)."""
    root = workdir / f"world_{height}x{width}"
    if not (root / "splits" / "synthetic" / "gt_depths.npz").is_file():
        shutil.rmtree(root, ignore_errors=True)  # an interrupted generation
        print(f"generating a synthetic KITTI-format world in {root}", flush=True)
        make_synthetic_kitti(root, seed=0, height=height, width=width, ext="png", **DEMO_WORLD)
    return root


def steps_per_epoch(world: Path, batch: int) -> int:
    """Steps in one epoch of the world's training list at ``batch``."""
    lines = (world / "splits" / "synthetic" / "train_files.txt").read_text().split("\n")
    return sum(1 for line in lines if line.strip()) // batch


def run_ours(world: Path, run_dir: Path, args) -> dict:
    """bin/train on ``world`` in a fresh ``run_dir``: the command's wall time and peak resident
    memory, and the run's ``timings.jsonl`` record (removes the run folder afterwards)."""
    shutil.rmtree(run_dir, ignore_errors=True)  # else bin/train would resume it
    command = [sys.executable, str(MEMORY_RUNNER), str(PROJECT_ROOT / "bin" / "train"),
               f"--mode={args.mode}", "--data_path", str(world),
               "--split_dir", str(world / "splits"), "--split", "synthetic", "--png",
               "--height", str(args.height), "--width", str(args.width),
               "--batch_size", str(args.batch), "--weights_init", "scratch",
               "--max_steps", str(args.steps), "--log_dir", str(run_dir.parent),
               "--model_name", run_dir.name]
    if args.mixed_precision:
        command.append(f"--mixed_precision={args.mixed_precision}")
    env = {k: v for k, v in os.environ.items() if k != "MONODEPTH_VERBOSE"}
    started = time.perf_counter()
    output = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if output.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{output.stdout[-2000:]}\n{output.stderr[-3000:]}")
    timings = [json.loads(line) for line in (run_dir / TIMINGS_FILE).read_text().splitlines()]
    peak = [json.loads(line) for line in output.stdout.splitlines() if line.startswith("{")]
    shutil.rmtree(run_dir, ignore_errors=True)
    return dict(timings[-1], command_wall_s=wall, peak_rss_mb=peak[-1]["peak_rss_mb"])


def our_row(ours: dict, batch: int) -> dict:
    """The row's figures of our run: sustained and overall samples/s, the shares of the
    command's wall time, seconds per checkpoint and weight folder, peak memory."""
    wall = ours["command_wall_s"]
    share = {"startup": wall - ours["wall_s"], "first_step": ours["first_step_s"],
             "steps": ours["steps_s"]}
    share.update({name: sum(ours[f"{name}_s"]) for name in PHASES})
    share["other"] = ours["other_s"]  # idle or untimed: an epoch's end once waited here
    return dict(e2e_samples_per_s=ours["samples_per_s"],
                e2e_step_s=round(batch / ours["samples_per_s"], 3),
                overall_samples_per_s=round(ours["end_step"] * batch / wall, 3),
                wall_s=round(wall, 1), steady_steps=ours["steps"],
                **{f"{name}_share": round(seconds / wall, 3) for name, seconds in share.items()},
                validations=len(ours["validation_s"]),
                validation_s=ours["validation_s"],
                checkpoint_write_s=mean(ours["checkpoint_s"]),
                weights_write_s=mean(ours["weights_s"]), peak_rss_mb=ours["peak_rss_mb"])


def mean(values) -> float:
    return round(sum(values) / len(values), 3) if values else None


def run_original_e2e(world: Path, args) -> dict:
    """The original's end-to-end samples/s on ``world`` and its main process's peak memory."""
    rows = run_original(args, "original_end_to_end.py",
                        [str(world), str(world / "splits"), "synthetic", "--mode", args.mode,
                         "--batch", str(args.batch), "--height", str(args.height),
                         "--width", str(args.width), "--workers", "2",
                         "--batches", str(args.original_batches),
                         "--warmup", str(ORIGINAL_WARMUP)])
    return rows[-1]


def one_round(world: Path, args, index: int) -> dict:
    """The original (when set up), our bin/train, our step alone: one row."""
    from benchmarks.train_step import measure_in_child  # (loads TensorFlow)

    original = run_original_e2e(world, args) if args.original_python else None
    ours = run_ours(world, Path(args.workdir) / "runs" / f"{args.mode}_{index}", args)
    row = dict(mode=args.mode, batch=args.batch, height=args.height, width=args.width,
               steps=args.steps, steps_per_epoch=steps_per_epoch(world, args.batch),
               **our_row(ours, args.batch))
    alone = measure_in_child(args.mode, args.batch, args.height, args.width, False,
                             args.step_repeats, 2, args.mixed_precision)
    row.update(mixed_precision=args.mixed_precision,
               step_alone_samples_per_s=alone["samples_per_s"],
               step_alone_peak_rss_mb=alone["peak_rss_mb"],
               e2e_over_step=round(row["e2e_samples_per_s"] / alone["samples_per_s"], 3))
    if original is not None:
        row.update(original_e2e_samples_per_s=original["e2e_samples_per_s"],
                   original_e2e_step_s=original["e2e_step_s"],
                   original_batches=original["batches"],
                   original_peak_rss_mb=original["peak_rss_mb"],
                   x_original=round(row["e2e_samples_per_s"] /
                                    original["e2e_samples_per_s"], 3))
    row.update(machine_fields())
    return row


def print_table(rows) -> None:
    """The rounds as a Markdown table."""
    print("\n| mode | e2e samples/s | step alone | e2e / step | overall samples/s | wall s | "
          "start-up | first step | validation | other | checkpoint s | weights s | peak RSS MiB "
          "(step alone) | original samples/s | x original | original peak RSS MiB | load |")
    print("| --- " * 17 + "|")
    for r in rows:
        theirs = (f"{r['original_e2e_samples_per_s']:.2f} | {r['x_original']:.2f} | "
                  f"{r['original_peak_rss_mb']:.0f}" if "x_original" in r else "- | - | -")
        print(f"| {r['mode']} | {r['e2e_samples_per_s']:.2f} | "
              f"{r['step_alone_samples_per_s']:.2f} | {r['e2e_over_step']:.2f} | "
              f"{r['overall_samples_per_s']:.2f} | {r['wall_s']:.0f} | "
              f"{r['startup_share']:.0%} | {r['first_step_share']:.0%} | "
              f"{r['validation_share']:.0%} ({r['validations']}x) | {r['other_share']:.0%} | "
              f"{r['checkpoint_write_s']:.2f} | {r['weights_write_s']:.2f} | "
              f"{r['peak_rss_mb']:.0f} ({r['step_alone_peak_rss_mb']:.0f}) | {theirs} | "
              f"{r['load_average']} |")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="mono")
    parser.add_argument("--steps", type=int, default=96,
                        help="bin/train --max_steps (past the first epoch's end)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the three measurements, interleaved")
    parser.add_argument("--step_repeats", type=int, default=10,
                        help="steps timed for the step alone (after 2 warm-up steps)")
    parser.add_argument("--original_batches", type=int, default=20,
                        help=f"batches timed for the original (after {ORIGINAL_WARMUP})")
    parser.add_argument("--workdir", default="/tmp/end_to_end_bench",
                        help="the world (kept for the next run) and the run folders")
    parser.add_argument("--mixed_precision", choices=["bfloat16", "float16"],
                        help="bin/train's and the step alone's (the original: float32)")
    parser.add_argument("--json", help="append the rows to this JSON-lines file")
    add_original_flags(parser)
    args = parser.parse_args()
    for flag in ("height", "width"):
        if getattr(args, flag) <= 0 or getattr(args, flag) % 32:
            parser.error(f"--{flag}={getattr(args, flag)} must be a positive multiple of 32")
    for flag in ("steps", "batch", "rounds", "step_repeats", "original_batches"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag}={getattr(args, flag)} must be at least 1")
    check_original(args, "original_end_to_end.py")
    return args


def main():
    args = parse_args()
    world = synthetic_world(Path(args.workdir), args.height, args.width)
    epoch = steps_per_epoch(world, args.batch)
    if args.steps <= epoch:
        sys.exit(f"--steps={args.steps} ends within the first epoch ({epoch} steps at "
                 f"--batch={args.batch}): the run must pass an epoch's end")
    rows = []
    for index in range(args.rounds):
        rows.append(one_round(world, args, index))
        print(json.dumps(rows[-1]), flush=True)
        if args.json:
            with open(args.json, "a") as out:
                out.write(json.dumps(rows[-1]) + "\n")
    print_table(rows)
    shutil.rmtree(Path(args.workdir) / "runs", ignore_errors=True)


if __name__ == "__main__":
    main()
