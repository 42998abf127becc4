"""bin/export_gt_depth: the ground-truth depth of a test split, as the original's gt_depths.npz.

    bin/export_gt_depth --data_path ~/kitti_data --split eigen

``eigen``: LiDAR scans projected into camera 2 (or 3); ``eigen_benchmark``: KITTI depth's
improved maps. Written to ``<split_dir>/<split>/gt_depths.npz`` (key ``data``, an object array
of float32 maps: load it with ``allow_pickle=True``) unless ``--output_dir`` says otherwise.
"""

from pathlib import Path

from absl import flags

from monodepth_tf.cli.common import run_tool
from monodepth_tf.data.gt_depth import export_gt_depths
from monodepth_tf.data.kitti import default_split_dir

flags.DEFINE_string("data_path", None, "Root of the KITTI raw data.")
flags.DEFINE_enum("split", "eigen", ["eigen", "eigen_benchmark"], "Test split to export.")
flags.DEFINE_string("split_dir", None, "Folder holding the split folders "
                    "(default: the project's splits/).")
flags.DEFINE_string("output_dir", None, "Where to write gt_depths.npz "
                    "(default: the split's folder).")
flags.mark_flag_as_required("data_path")


def main(argv):
    del argv
    args = flags.FLAGS
    split_dir = Path(args.split_dir or default_split_dir())
    output = Path(args.output_dir or split_dir / args.split) / "gt_depths.npz"
    count = export_gt_depths(args.data_path, args.split, split_dir, output)
    print(f"wrote {count} ground-truth maps to {output}")


def run():
    run_tool(main)
