"""bin/check_data: every missing, unreadable or truncated file a split needs, before training.

    bin/check_data --data_path ~/kitti_data --split eigen_zhou --split_dir ~/monodepth2/splits
    bin/check_data --data_path ~/kitti_data --split eigen_full --png --frame_ids 0 --use_stereo
    bin/check_data --dataset folder --data_path ~/my_videos --frame_stride 3

With ``--dataset folder`` (your own frames and videos, see monodepth_tf/data/folder/) it
prints, per sequence, the kept frames, the usable samples for ``--frame_ids``, the estimated
inter-frame motion (mean absolute difference between consecutive frames) and the sequences too
short for the frame ids; it exits 2 when a file is broken or no sample is usable.

The val and test lists' LiDAR scans are checked too (``--lidar``: every list's, ``--nolidar``:
none); ``--decode`` also decodes every image.

Prints each problem (``<file>: <what is wrong> (needed by <split file> line <n>)``) to stderr
and exits with code 2, or prints how many samples were checked and exits 0.
"""

import sys
from pathlib import Path

from absl import app, flags

from monodepth_tf.data.check import check_split
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.splits import default_split_dir, read_split

EXIT_DATA_PROBLEM = 2

flags.DEFINE_string("data_path", None, "Root of the KITTI raw data (holding the date folders).")
flags.DEFINE_string("split", "eigen_zhou", "Split folder name under --split_dir.")
flags.DEFINE_string("split_dir", None, "Folder holding the split folders (default: the "
                    "repository's splits/; see splits/README.md).")
flags.DEFINE_bool("png", False, "Images are .png (default .jpg, as the original).")
flags.DEFINE_list("frame_ids", ["0", "-1", "1"], "Frames each sample needs: offsets, or s.")
flags.DEFINE_bool("use_stereo", False, "Samples also need the other camera's image.")
flags.DEFINE_list("names", ["train", "val"], "Which lists of the split to check.")
flags.DEFINE_bool("lidar", None, "Every sample needs its LiDAR scan (--nolidar: none does). "
                  "Default: the val and test lists' samples, whose scans are the ground truth "
                  "that validation and evaluation score against.")
flags.DEFINE_bool("decode", False, "Also decode every image, for damage that the header and "
                  "end-marker checks cannot see (about as slow as an epoch's decoding).")
flags.DEFINE_enum("dataset", "kitti", ["kitti", "folder"], "kitti (split lists of the raw "
                  "release) or folder (frame folders and videos with an intrinsics.json).")
flags.DEFINE_integer("frame_stride", 1, "--dataset=folder: keep every N-th frame.")
flags.DEFINE_float("target_fps", 0.0, "--dataset=folder: subsample to about this frame rate.")
flags.DEFINE_float("skip_static", 0.0, "--dataset=folder: drop frames moving less than this.")
flags.mark_flag_as_required("data_path")


def check_folder_dataset(args) -> int:
    """``--dataset=folder``: the per-sequence table on stdout; problems on stderr (exit 2)."""
    from monodepth_tf.data.folder import (FolderLayout, FolderOptions, check_folder,
                                          format_reports)

    frame_ids = [f if f == "s" else int(f) for f in args.frame_ids]
    if args.use_stereo and "s" not in frame_ids:
        frame_ids.append("s")
    try:
        layout = FolderLayout(args.data_path, FolderOptions(args.frame_stride, args.target_fps,
                                                            args.skip_static))
        reports, problems = check_folder(layout, frame_ids)
    except (DataError, ValueError) as error:
        reports, problems = [], [str(error)]
    if reports:
        print(format_reports(reports, frame_ids))
    if not problems and not sum(r.samples for r in reports):
        problems = [f"{args.data_path}: no usable sample for frames "
                    f"{','.join(str(f) for f in frame_ids)}"]
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"error: {len(problems)} problem(s) with {args.data_path}", file=sys.stderr)
        return EXIT_DATA_PROBLEM
    return 0


def main(argv) -> int:
    """Checks the split; returns the exit code (0: all good, 2: problems, listed on stderr)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    args = flags.FLAGS
    if args.dataset == "folder":
        return check_folder_dataset(args)
    split_dir = Path(args.split_dir) if args.split_dir else default_split_dir()
    try:
        problems = check_split(args.data_path, args.split, split_dir, args.frame_ids,
                               args.use_stereo, "png" if args.png else "jpg", args.names,
                               args.lidar, args.decode)
        if not problems:
            samples = sum(len(read_split(split_dir, args.split, name)) for name in args.names)
    except DataError as error:
        problems = [str(error)]
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"error: {len(problems)} problem(s) with split {split_dir / args.split} on "
              f"{args.data_path}", file=sys.stderr)
        return EXIT_DATA_PROBLEM
    lidar = {True: "every LiDAR scan", False: "no LiDAR scan"}.get(
        args.lidar, "the LiDAR scans of val and test samples")
    print(f"{samples} samples of split {args.split} checked ({', '.join(args.names)}; images, "
          f"calibration, {lidar}{'; every image decoded' if args.decode else ''}): every "
          "file is present and whole")
    return 0


def run():
    app.run(main)
