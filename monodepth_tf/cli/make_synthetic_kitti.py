"""bin/make_synthetic_kitti: a synthetic street with exact depth, in KITTI's raw layout.

    bin/make_synthetic_kitti --output_dir ~/synthetic_kitti [--seed 0 --num_drives 3
        --frames_per_drive 100 --height 375 --width 1242 --ext png]

Train on it with ``--data_path DIR --split_dir DIR/splits --split synthetic --png``; the exact
depth of its test frames is ``DIR/splits/synthetic/gt_depths.npz`` (key ``data``: camera 2,
key ``cam3``: camera 3), in the order of ``test_files.txt``.
"""

import sys

from absl import app, flags

from monodepth_tf.files import check_output_folder
from monodepth_tf.synthetic import KITTI_HEIGHT, KITTI_WIDTH, make_synthetic_kitti

flags.DEFINE_string("output_dir", None, "Folder to write the dataset into (created).")
flags.DEFINE_integer("seed", 0, "World, path and texture seed: same seed, same bytes.")
flags.DEFINE_integer("num_drives", 3, "Drives (separate streets); the last one is the test "
                     "drive when there are two or more.")
flags.DEFINE_integer("frames_per_drive", 100, "Stereo frames per drive (at least 10).")
flags.DEFINE_integer("height", KITTI_HEIGHT, "Image height; KITTI's intrinsics are rescaled.")
flags.DEFINE_integer("width", KITTI_WIDTH, "Image width; KITTI's intrinsics are rescaled.")
flags.DEFINE_enum("ext", "png", ["png", "jpg"], "Image file format.")
flags.DEFINE_integer("workers", None, "Processes (default: the CPU count, one for small worlds).")
flags.mark_flag_as_required("output_dir")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        check_output_folder(FLAGS.output_dir, "--output_dir")
        summary = make_synthetic_kitti(FLAGS.output_dir, FLAGS.seed, FLAGS.num_drives,
                                       FLAGS.frames_per_drive, FLAGS.height, FLAGS.width,
                                       FLAGS.ext, FLAGS.workers)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {summary.frames} stereo frames in {len(summary.drives)} drives to "
          f"{summary.root} ({summary.train} train, {summary.val} val, {summary.test} test "
          f"lines in {summary.split_dir}/synthetic; exact test depth in {summary.gt_depths})")


def run():
    app.run(main)
