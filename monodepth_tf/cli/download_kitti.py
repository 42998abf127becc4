"""bin/download_kitti: KITTI raw data and the standard split lists, by command.

    bin/download_kitti --splits_only                              # the six standard split lists
    bin/download_kitti --data_path ~/kitti_data --split eigen_zhou --jpeg   # drives it needs
    bin/download_kitti --data_path ~/kitti_data --drives 2011_09_26_drive_0001,2011_09_26_drive_0002
    bin/download_kitti --data_path ~/kitti_data --jpeg            # all 61 drives, about 175 GB

Downloads resume after an interruption (run the same command again); archives already
unpacked are skipped. ``--split eigen_benchmark`` also fetches KITTI depth's improved maps
(``--depth_annotated``). A ``--split`` whose lists are missing is fetched first when it is a
standard one. ``$MONODEPTH_KITTI_URL`` and ``$MONODEPTH_SPLITS_URL`` replace the addresses
(mirrors). Exits 2 with the problem on stderr.
"""

import sys
from pathlib import Path
from typing import List, Optional

from absl import app, flags

from monodepth_tf.data.errors import DataError
from monodepth_tf.data.kitti_download import download_kitti, split_drives
from monodepth_tf.data.splits import STANDARD_SPLITS
from monodepth_tf.data.splits import default_split_dir
from monodepth_tf.data.standard_splits import (LICENSE_NAME, PINNED_COMMIT, ensure_standard_split,
                                               fetch_standard_splits)
from monodepth_tf.download import DownloadError

EXIT_PROBLEM = 2

flags.DEFINE_string("data_path", None, "Root to fill with KITTI raw data (date folders).")
flags.DEFINE_bool("splits_only", False, "Only fetch the standard split lists "
                  f"({', '.join(STANDARD_SPLITS)}) into --split_dir.")
flags.DEFINE_string("split", None, "Download only the drives this split's lists name (fetched "
                    "first when it is a standard split and missing).")
flags.DEFINE_list("drives", None, "Download only these drives, e.g. 2011_09_26_drive_0001.")
flags.DEFINE_string("split_dir", None, "Folder of split folders (default: the repository's "
                    "splits/, or $MONODEPTH_SPLIT_DIR).")
flags.DEFINE_bool("depth_annotated", False, "Also KITTI depth's improved ground truth "
                  "(data_depth_annotated.zip, 14 GB; on with --split eigen_benchmark).")
flags.DEFINE_bool("jpeg", False, "Convert camera PNGs to JPEG (quality 92, 4:2:0), as the "
                  "original's README does, so training runs without --png.")
flags.DEFINE_bool("keep_png", False, "With --jpeg: keep the PNGs as well.")
flags.DEFINE_bool("keep_archives", False, "Keep the zips after unpacking.")
flags.DEFINE_integer("jobs", 0, "Parallel JPEG conversions (0: one per CPU).")


def show_licence(split_dir: Path) -> None:
    """Says where the split lists come from and under which licence."""
    print(f"The split lists come from Monodepth2 (github.com/nianticlabs/monodepth2, commit "
          f"{PINNED_COMMIT[:12]}) and are licensed for NON-COMMERCIAL use only: read "
          f"{split_dir / LICENSE_NAME} before using them.")


def chosen_drives(args, split_dir: Path) -> Optional[List[str]]:
    """The drives of ``--split`` (a missing standard split is fetched first) and ``--drives``
    (None: all)."""
    if not args.split and not args.drives:
        return None
    drives = list(args.drives or [])
    if args.split:
        if ensure_standard_split(split_dir, args.split):
            print(f"fetched the split lists of {args.split} into {split_dir}")
            show_licence(split_dir)
        drives += split_drives(split_dir, args.split)
    return drives


def main(argv) -> int:
    """Runs the download; returns the exit code (2 with the problem on stderr)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    args = flags.FLAGS
    split_dir = Path(args.split_dir).expanduser() if args.split_dir else default_split_dir()
    try:
        if args.splits_only:
            written = fetch_standard_splits(split_dir)
            print(f"split lists {', '.join(STANDARD_SPLITS)} in {split_dir} ({len(written)} "
                  "files fetched, the others were there)")
            show_licence(split_dir)
            return 0
        if not args.data_path:
            raise app.UsageError("--data_path is required (or --splits_only)")
        if args.keep_png and not args.jpeg:
            raise app.UsageError("--keep_png needs --jpeg")
        drives = chosen_drives(args, split_dir)
        depth = args.depth_annotated or args.split == "eigen_benchmark"
        result = download_kitti(args.data_path, drives, depth, args.jpeg, args.keep_png,
                                args.keep_archives, args.jobs, progress=True)
    except (DataError, DownloadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_PROBLEM
    print(f"done: {result['downloaded']} archives fetched, {result['skipped']} already there"
          + (f", {result['converted']} PNGs converted to JPEG" if args.jpeg else ""))
    return 0


def run():
    app.run(main)
