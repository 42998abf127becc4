"""bin/make_synthetic_kitti: a synthetic street with exact depth, in KITTI's raw layout.

    bin/make_synthetic_kitti --output_dir ~/synthetic_kitti --seed 0

Train on it with ``--data_path <output_dir> --split_dir <output_dir>/splits --split synthetic
--png``; its test split's exact depth is ``<output_dir>/splits/synthetic/gt_depths.npz``.
"""

from absl import flags

from monodepth_tf.cli.common import run_tool
from monodepth_tf.data.synthetic import KITTI_HEIGHT, KITTI_WIDTH, make_synthetic_kitti

flags.DEFINE_string("output_dir", None, "Folder to write the dataset into.")
flags.DEFINE_integer("seed", 0, "World and path seed (same seed, same files).")
flags.DEFINE_integer("num_drives", 2, "Number of drives (separate streets).")
flags.DEFINE_integer("frames_per_drive", 100, "Frames per drive (at least 10).")
flags.DEFINE_integer("height", KITTI_HEIGHT, "Image height (KITTI's by default).")
flags.DEFINE_integer("width", KITTI_WIDTH, "Image width (KITTI's by default).")
flags.DEFINE_enum("ext", "png", ["png", "jpg"], "Image format.")
flags.mark_flag_as_required("output_dir")


def main(argv):
    del argv
    args = flags.FLAGS
    summary = make_synthetic_kitti(args.output_dir, args.seed, args.num_drives,
                                   args.frames_per_drive, args.height, args.width, args.ext)
    print(f"wrote {summary['frames']} stereo frames to {summary['root']} "
          f"({summary['train']} train, {summary['val']} val, {summary['test']} test samples; "
          f"splits in {summary['split_dir']}/synthetic)")


def run():
    run_tool(main)
