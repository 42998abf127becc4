"""bin/show_sample: one training sample as the networks and the loss will see it, as a PNG.

    bin/show_sample --data_path ~/kitti_data --split eigen_zhou --index 42 --png
    bin/show_sample --dataset folder --data_path ~/my_videos --index 10

Rows: each frame of the sample, the image the loss compares (left) beside the colour-jittered
copy the networks see (right), flips applied; last row: the target frame's LiDAR ground truth
as a colour map (near = bright) over the image, when the scan is there.
"""

from pathlib import Path

import cv2
import numpy as np
from absl import flags

from monodepth_tf.cli.common import run_tool
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.frames import SIDE_CAMERA
from monodepth_tf.data.gt_depth import lidar_depth_map
from monodepth_tf.data.images import load_rgb
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.pipeline import PipelineOptions, make_dataset
from monodepth_tf.data.splits import default_split_dir, read_split

flags.DEFINE_string("data_path", None, "Root of the KITTI raw data.")
flags.DEFINE_string("split", "eigen_zhou", "Split folder name.")
flags.DEFINE_string("split_dir", None, "Folder of split folders (default: the project's).")
flags.DEFINE_string("list", "train", "Which list: train, val or test.")
flags.DEFINE_integer("index", 0, "Line of the list (from 0).")
flags.DEFINE_bool("png", False, "Images are .png.")
flags.DEFINE_list("frame_ids", ["0", "-1", "1"], "Frames of a sample.")
flags.DEFINE_bool("use_stereo", False, "Add the other camera ('s').")
flags.DEFINE_integer("height", 192, "Network input height.")
flags.DEFINE_integer("width", 640, "Network input width.")
flags.DEFINE_integer("seed", 0, "Augmentation seed.")
flags.DEFINE_string("output", "sample.png", "PNG to write.")
flags.DEFINE_enum("dataset", "kitti", ["kitti", "folder"], "kitti, or folder (frame folders "
                  "and videos with an intrinsics.json; without --split_dir the list is the "
                  "train/val division training makes).")
flags.DEFINE_integer("frame_stride", 1, "--dataset=folder: keep every N-th frame.")
flags.DEFINE_float("target_fps", 0.0, "--dataset=folder: subsample to about this frame rate.")
flags.DEFINE_float("skip_static", 0.0, "--dataset=folder: drop frames moving less than this.")
flags.mark_flag_as_required("data_path")


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray(image)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                cv2.LINE_AA)
    return out


def depth_overlay(image: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """LiDAR depth [H, W] as magma colours (inverse depth, near = bright) over an RGB image."""
    valid = depth > 0
    inverse = np.zeros_like(depth)
    inverse[valid] = 1.0 / depth[valid]
    scale = np.percentile(inverse[valid], 95) if valid.any() else 1.0
    colours = cv2.applyColorMap(np.clip(inverse / scale * 255, 0, 255).astype(np.uint8),
                                cv2.COLORMAP_MAGMA)[..., ::-1]
    grown = cv2.dilate(valid.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    colours = cv2.dilate(colours, np.ones((3, 3), np.uint8))
    out = (image * 0.5).astype(np.uint8)
    out[grown] = colours[grown]
    return out


def main(argv):
    del argv
    args = flags.FLAGS
    frame_ids = tuple(f if f == "s" else int(f) for f in args.frame_ids)
    if args.use_stereo and "s" not in frame_ids:
        frame_ids += ("s",)
    if args.dataset == "folder":
        from monodepth_tf.data.folder import FolderOptions, folder_samples

        split = args.split if args["split"].present else "folder"
        layout, entries = folder_samples(
            args.data_path, frame_ids, args.list, args.split_dir, split,
            FolderOptions(args.frame_stride, args.target_fps, args.skip_static))
    else:
        split = args.split
        layout = KittiRawLayout(args.data_path, "png" if args.png else "jpg")
        entries = read_split(args.split_dir or default_split_dir(), split, args.list)
    if not 0 <= args.index < len(entries):
        raise DataError(f"--index={args.index}: the {args.list} list of {split} has "
                        f"{len(entries)} samples")
    entry = entries[args.index]
    options = PipelineOptions(args.height, args.width, frame_ids, augment=True, seed=args.seed)
    batch = next(iter(make_dataset(layout, [entry], options, 1, shuffle=False)))
    flipped = float(batch.stereo_T[0, 0, 3]) * (-1 if entry.side == "l" else 1) < 0
    to_uint8 = lambda t: (np.clip(t.numpy()[0], 0, 1) * 255).astype(np.uint8)  # noqa: E731
    rows = []
    for key in batch.color:
        note = " flipped" if flipped else ""
        rows.append(np.hstack([label(to_uint8(batch.color[key][0]), f"frame {key}{note}: loss"),
                               label(to_uint8(batch.color_aug[key]), f"frame {key}: network")]))
    velodyne = layout.velodyne_path(entry.folder, entry.frame_index) if layout.has_lidar else None
    if velodyne is not None and velodyne.is_file():
        image = load_rgb(layout.image_path(entry.folder, entry.frame_index, entry.side))
        depth = lidar_depth_map(layout.calib_dir(entry.folder), velodyne, SIDE_CAMERA[entry.side])
        overlay = depth_overlay(image, depth)
        if flipped:
            overlay = overlay[:, ::-1]
        width = 2 * args.width
        overlay = cv2.resize(overlay, (width, round(overlay.shape[0] * width / overlay.shape[1])))
        rows.append(label(overlay, f"LiDAR ground truth, {int((depth > 0).sum())} points"))
    sheet = np.vstack(rows)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), sheet[..., ::-1])
    print(f"wrote {args.output}: {entry.folder} frame {entry.frame_index} ({entry.side})"
          f"{', flipped' if flipped else ''}")


def run():
    run_tool(main)
