"""Samples per second of the tf.data pipeline at 192x640, on real KITTI frames.

    .venv/bin/python benchmarks/data_pipeline.py [--mode mono|mono_stereo] [--ext png|jpg]
                                                 [--parallel 1|2] [--samples N]
                                                 [--clock wall|cpu]

Builds a KITTI raw tree in a temporary folder from the real frame in ../shared/kitti (PNG as
released, and a JPEG copy at quality 92, as the original's converted data), then times the
training pipeline (decode, flip, Pillow-exact Lanczos on uint8 to 4 scales, each from the
previous one, as the original's dataset resizes; colour jitter) with ``num_parallel_calls`` 1
or 2. Prints a table and one JSON line per configuration. TensorFlow may run one call on
several threads: pin the process to one core (`taskset -c 0`) to measure per-core speed. The
frames are one real frame under many names, so files come from the page cache, as they do
after a first epoch.

Compare with the original's dataset only when both run in the same session, interleaved (see
../shared/bench/README.md: ``original_data.py`` times the original's ``__getitem__`` on one
core), and report the load average: speeds move between machines and with the load.
"""

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from monodepth_tf.data.kitti import KittiRawLayout, SplitEntry  # noqa: E402
from monodepth_tf.data.pipeline import PipelineOptions, make_dataset  # noqa: E402

DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"
MODES = {"mono": (0, -1, 1), "mono_stereo": (0, -1, 1, "s")}


def build_tree(kitti_dir: Path, root: Path, frames: int) -> None:
    for cam in ("image_02", "image_03"):
        real = kitti_dir / "raw" / DRIVE / cam / "data" / "0000000001.png"
        folder = root / DRIVE / cam / "data"
        folder.mkdir(parents=True)
        jpeg = folder / "source.jpg"
        cv2.imwrite(str(jpeg), cv2.imread(str(real)), [cv2.IMWRITE_JPEG_QUALITY, 92])
        for i in range(frames):
            os.symlink(real, folder / f"{i:010d}.png")
            os.symlink(jpeg, folder / f"{i:010d}.jpg")


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=list(MODES))
    parser.add_argument("--ext", choices=["png", "jpg"])
    parser.add_argument("--parallel", type=int, choices=[1, 2])
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: samples per CPU-second of this process (all its threads), "
                        "which other processes' load does not change")
    parser.add_argument("--kitti_dir", default=str(Path(__file__).resolve().parents[2]
                                                   / "shared" / "kitti"))
    args = parser.parse_args()
    configs = [c for c in itertools.product(MODES, ("png", "jpg"), (1, 2))
               if (args.mode in (None, c[0]) and args.ext in (None, c[1])
                   and args.parallel in (None, c[2]))]
    with tempfile.TemporaryDirectory() as tmp:
        build_tree(Path(args.kitti_dir), Path(tmp), args.samples + 7)
        rows = []
        for mode, ext, parallel in configs:
            clock = time.process_time if args.clock == "cpu" else time.perf_counter
            rate = measure(Path(tmp), mode, ext, parallel, args.samples + 5, clock)
            rows.append((mode, ext, parallel, rate))
            print(json.dumps({"mode": mode, "ext": ext, "parallel": parallel,
                              "clock": args.clock, "samples_per_s": round(rate, 2)}),
                  flush=True)
    print("\n| mode | ext | parallel calls | samples/s | per core |")
    print("| --- | --- | --- | --- | --- |")
    for mode, ext, parallel, rate in rows:
        print(f"| {mode} | {ext} | {parallel} | {rate:.1f} | {rate / parallel:.1f} |")


if __name__ == "__main__":
    main()
