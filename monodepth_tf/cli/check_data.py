"""bin/check_data: lists every missing or unreadable file a split needs, before training.

    bin/check_data --data_path ~/kitti_data --split eigen_zhou --png
"""

from absl import flags

from monodepth_tf.cli.common import run_tool
from monodepth_tf.data.check import raise_on_problems, split_problems
from monodepth_tf.data.kitti import KittiRawLayout, default_split_dir, read_split

flags.DEFINE_string("data_path", None, "Root of the KITTI raw data.")
flags.DEFINE_string("split", "eigen_zhou", "Split folder name under --split_dir.")
flags.DEFINE_string("split_dir", None, "Folder holding the split folders "
                    "(default: the project's splits/).")
flags.DEFINE_bool("png", False, "Images are .png (default .jpg, as the original).")
flags.DEFINE_list("frame_ids", ["0", "-1", "1"], "Frames each sample needs.")
flags.DEFINE_bool("use_stereo", False, "Samples also need the other camera's image.")
flags.DEFINE_list("names", ["train", "val"], "Which lists of the split to check.")
flags.mark_flag_as_required("data_path")


def main(argv):
    del argv
    args = flags.FLAGS
    split_dir = args.split_dir or default_split_dir()
    layout = KittiRawLayout(args.data_path, "png" if args.png else "jpg")
    frame_ids = list(args.frame_ids) + (["s"] if args.use_stereo and "s" not in args.frame_ids
                                        else [])
    total, problems = 0, []
    for name in args.names:
        entries = read_split(split_dir, args.split, name)
        total += len(entries)
        problems += split_problems(layout, entries, frame_ids, source=f"{name}_files.txt")
    raise_on_problems(problems, f"split {args.split} in {args.data_path}")
    print(f"{total} samples of split {args.split} checked: every file is present and whole")


def run():
    run_tool(main)
