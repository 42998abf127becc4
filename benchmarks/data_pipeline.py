"""Samples per second of the tf.data pipeline at 192x640, on real KITTI frames.

    .venv/bin/python benchmarks/data_pipeline.py [--mode mono|mono_stereo] [--ext png|jpg]
                                                 [--parallel 1|2] [--samples N]
                                                 [--clock wall|cpu] [--rounds N]
        [--original_python /work/orig/venv/bin/python --original_ref /work/orig/monodepth2]

Builds a KITTI raw tree in a temporary folder from the real frame in ../shared/kitti (PNG as
released, and a JPEG copy at quality 92, as the original's converted data), then times the
training pipeline (decode, flip, Pillow-exact Lanczos on uint8 to 4 scales, each from the
previous one, as the original's dataset resizes; colour jitter) with ``num_parallel_calls`` 1
or 2. Prints a table and one JSON line per configuration. TensorFlow may run one call on
several threads: pin the process to one core (`taskset -c 0`) to measure per-core speed. The
frames are one real frame under many names, so files come from the page cache, as they do
after a first epoch.

With ``--original_python`` (a Python with the original's dependencies) and ``--original_ref``
(the original's source), each round also times the original's dataset on the same tree, first
(``../shared/bench/original_data.py``: its ``__getitem__``, PNG, on one thread; with ``--clock
cpu`` its clock is swapped for CPU time too), and prints the ratio of the two from that round;
``--rounds`` interleaves several rounds. Speeds move between machines and with the load, so the
ratio means something only within a run; the load average is printed with it.
"""

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import monodepth_tf  # noqa: E402,F401  (before TensorFlow: oneDNN on, as in bin/)

from monodepth_tf.data.kitti import KittiRawLayout  # noqa: E402
from monodepth_tf.data.pipeline import PipelineOptions, make_dataset  # noqa: E402
from monodepth_tf.data.splits import SplitEntry  # noqa: E402
from benchmarks.original import (SHARED, add_original_flags, check_original,  # noqa: E402
                                 run_original)

DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"
MODES = {"mono": (0, -1, 1), "mono_stereo": (0, -1, 1, "s")}


def build_tree(kitti_dir: Path, root: Path, frames: int) -> None:
    """A KITTI raw tree in ``root``: frames ``0 .. frames - 1`` of both cameras (PNG, and a
    JPEG at quality 92), all the real frame, and the date's calibration files."""
    (root / DRIVE).parent.mkdir(parents=True)
    for calib in (kitti_dir / "raw" / DRIVE).parent.glob("calib_*.txt"):
        os.symlink(calib, (root / DRIVE).parent / calib.name)
    for cam in ("image_02", "image_03"):
        real = kitti_dir / "raw" / DRIVE / cam / "data" / "0000000001.png"
        folder = root / DRIVE / cam / "data"
        folder.mkdir(parents=True)
        jpeg = folder / "source.jpg"
        cv2.imwrite(str(jpeg), cv2.imread(str(real)), [cv2.IMWRITE_JPEG_QUALITY, 92])
        for i in range(frames):
            os.symlink(real, folder / f"{i:010d}.png")
            os.symlink(jpeg, folder / f"{i:010d}.jpg")


def measure_original(root: Path, args) -> dict:
    """Samples per second of the original's dataset per mode (``{mode: rate}``), from
    ``original_data.py`` on the tree ``root``."""
    entry = f"{DRIVE} 1 l"  # frames 0 and 2 are its neighbours
    rows = run_original(args, "original_data.py", [str(root), entry],
                        cpu_clock=args.clock == "cpu")
    return {row["mode"]: row["samples_per_s_per_core"] for row in rows}


def measure(root: Path, mode: str, ext: str, parallel: int, samples: int,
            clock=time.perf_counter) -> float:
    entries = [SplitEntry(DRIVE, i, "l") for i in range(1, samples + 1)]
    options = PipelineOptions(192, 640, MODES[mode], num_parallel_calls=parallel)
    data = make_dataset(KittiRawLayout(root, ext), entries, options, batch_size=1)
    iterator = iter(data)
    for _ in range(5):  # warm-up: tracing and the first decodes
        next(iterator)
    start = clock()
    count = sum(1 for _ in iterator)
    return count / (clock() - start)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=list(MODES))
    parser.add_argument("--ext", choices=["png", "jpg"])
    parser.add_argument("--parallel", type=int, choices=[1, 2])
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: samples per CPU-second of this process (all its threads), "
                        "which other processes' load does not change")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions")
    parser.add_argument("--kitti_dir", default=str(SHARED / "kitti"))
    add_original_flags(parser)
    args = parser.parse_args()
    check_original(args, "original_data.py")
    if args.rounds < 1 or args.samples < 1:
        sys.exit("--rounds and --samples must be at least 1")
    return args


def print_table(rows) -> None:
    """rows: ``(round, mode, ext, parallel, ours, original or None)``."""
    print("\n| round | mode | ext | parallel calls | samples/s | per core | original per core "
          "| ratio per core |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for number, mode, ext, parallel, rate, original in rows:
        theirs = f"{original:.1f} | {rate / parallel / original:.2f}x" if original else "- | -"
        print(f"| {number} | {mode} | {ext} | {parallel} | {rate:.1f} | {rate / parallel:.1f} | "
              f"{theirs} |")
    ratios = {}
    for _, mode, ext, parallel, rate, original in rows:
        if original:
            ratios.setdefault((mode, ext, parallel), []).append(rate / parallel / original)
    for (mode, ext, parallel), values in ratios.items():
        print(f"\n{mode} {ext} parallel {parallel}: ratio per core over {len(values)} rounds: "
              f"median {statistics.median(values):.2f}x, range {min(values):.2f}-"
              f"{max(values):.2f}x")


def main():
    args = parse_args()
    configs = [c for c in itertools.product(MODES, ("png", "jpg"), (1, 2))
               if (args.mode in (None, c[0]) and args.ext in (None, c[1])
                   and args.parallel in (None, c[2]))]
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    with tempfile.TemporaryDirectory() as tmp:
        build_tree(Path(args.kitti_dir), Path(tmp), args.samples + 7)
        rows = []
        for number in range(1, args.rounds + 1):
            original = {}
            if args.original_python:
                original = measure_original(Path(tmp), args)
            for mode, ext, parallel in configs:
                rate = measure(Path(tmp), mode, ext, parallel, args.samples + 5, clock)
                # the original reads PNG on one thread: compared with the same
                theirs = original.get(mode) if ext == "png" else None
                rows.append((number, mode, ext, parallel, rate, theirs))
                print(json.dumps({
                    "round": number, "mode": mode, "ext": ext, "parallel": parallel,
                    "clock": args.clock, "samples_per_s": round(rate, 2),
                    "original_samples_per_s_per_core": theirs,
                    "ratio_per_core": round(rate / parallel / theirs, 3) if theirs else None,
                    "load_average": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
