"""bin/export_gt_depth: the ground truth of a test split, as the original's gt_depths.npz.

    bin/export_gt_depth --data_path ~/kitti_data --split eigen --split_dir ~/monodepth2/splits

``eigen``: each test frame's LiDAR scan projected into its camera (monodepth_tf.data.gt_depth
has the exact recipe), each pixel holding its LiDAR point's forward coordinate x, as the
original's export writes it (its published Eigen numbers are scored against these maps);
``--novelodyne_depth`` writes the depth along the camera axis instead (about 0.28 m less, what
the original's in-training validation uses). ``eigen_benchmark``: KITTI depth's improved maps,
found at ``<data_path>/<drive folder>/proj_depth/groundtruth/image_02/<10 digits>.png``. Written to
``<output_dir>/gt_depths.npz`` (default ``<split_dir>/<split>/``) under key ``data``: an object
array of float32 maps, read with ``np.load(path, allow_pickle=True)["data"]``.
"""

import sys
from pathlib import Path

from absl import app, flags

from monodepth_tf.data.errors import DataError
from monodepth_tf.data.gt_depth import GT_SPLITS, export_gt_depths
from monodepth_tf.data.splits import default_split_dir
from monodepth_tf.files import OutputPathError, check_output_folder

EXIT_DATA_PROBLEM = 2

flags.DEFINE_string("data_path", None, "Root of the KITTI raw data (holding the date folders).")
flags.DEFINE_string("split", "eigen", f"Test split to export: {', '.join(GT_SPLITS)}, or any "
                    "split folder whose test lines name raw KITTI frames (LiDAR ground truth).")
flags.DEFINE_string("split_dir", None, "Folder holding the split folders (default: the "
                    "repository's splits/; see splits/README.md).")
flags.DEFINE_string("output_dir", None, "Where to write gt_depths.npz (default: the split's "
                    "folder, <split_dir>/<split>).")
flags.DEFINE_bool("velodyne_depth", True, "LiDAR splits (eigen): each pixel holds its LiDAR "
                  "point's forward coordinate x, as the original's export does; "
                  "--novelodyne_depth: the depth along the camera axis instead (~0.28 m less; "
                  "see monodepth_tf.data.gt_depth).")
flags.mark_flag_as_required("data_path")


def main(argv) -> int:
    """Exports the ground truth; returns the exit code (2 with the problem on stderr)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    args = flags.FLAGS
    split_dir = Path(args.split_dir) if args.split_dir else default_split_dir()
    output = Path(args.output_dir or split_dir / args.split) / "gt_depths.npz"
    try:
        if args.output_dir:
            check_output_folder(args.output_dir, "--output_dir")
        count = export_gt_depths(args.data_path, args.split, split_dir, output,
                                 args.velodyne_depth)
    except (DataError, OutputPathError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DATA_PROBLEM
    print(f"wrote {count} ground-truth maps to {output}")
    return 0


def run():
    app.run(main)
