"""bin/evaluate_pose: the KITTI odometry pose evaluation (ATE over 5-frame snippets).

    bin/evaluate_pose --load_weights_folder ~/tmp/mdp/models/weights_19 \\
        --data_path ~/kitti_odom --eval_split odom_9 --png

``--data_path`` is the odometry root holding ``sequences/<NN>/image_2/<6 digits>.<ext>`` and
``poses/<NN>.txt``. Every frame listed in the poses file is read (the original's
``splits/odom/test_files_<NN>.txt`` lists the same pairs: frames 0 .. N - 2 with their next
frame). The pose network (pairs of frames) predicts each frame-to-frame transform; the ATE of
every 5-frame snippet is printed as the original prints it, per sequence. ``--camera 0`` reads
the grayscale ``image_0`` folder instead of the colour ``image_2`` (grayscale frames are fed as
three equal channels). See :mod:`monodepth_tf.evaluation.pose` for the protocol.
"""

import dataclasses
import json
from pathlib import Path
from typing import List, Optional

import numpy as np
from absl import flags

from monodepth_tf.cli.common import load_networks_from_flags, run_tool
from monodepth_tf.data.kitti import KittiOdometryLayout
from monodepth_tf.evaluation.pose import (PROTOCOLS, SNIPPET_LENGTH, PoseEvaluationError,
                                          check_pose_config, evaluate_poses, format_result,
                                          iterate_frames, parse_sequences, predict_transforms,
                                          read_poses_file)
from monodepth_tf.files import check_output_folder
from monodepth_tf.progress import ProgressBar


@dataclasses.dataclass
class PoseEvalArgs:
    """The tool's flags, so that :func:`evaluate` also runs without absl (field = flag)."""

    load_weights_folder: Optional[str] = None
    model_zoo: Optional[str] = None
    data_path: Optional[str] = None
    eval_split: Optional[str] = None
    sequences: Optional[List[str]] = None
    camera: int = 2
    png: bool = False
    batch_size: int = 16
    protocol: str = "original"
    include_short_snippets: bool = False
    save_pred_poses: bool = False
    output_dir: Optional[str] = None
    output_json: Optional[str] = None

    @classmethod
    def from_flags(cls, values) -> "PoseEvalArgs":
        return cls(**{f.name: getattr(values, f.name) for f in dataclasses.fields(cls)})


@dataclasses.dataclass
class SequenceInput:
    """One sequence's checked inputs: its ground truth and the image of every frame."""

    sequence: int
    gt_poses: np.ndarray  # [N, 4, 4]
    image_paths: List[Path]


def check_sequence(layout, sequence: int, camera: int) -> SequenceInput:
    """Reads a sequence's poses file and checks that the sequence folder and every frame
    exist, before any network is loaded (errors name the path)."""
    folder = layout.sequence_dir(sequence)
    if not folder.is_dir():
        raise PoseEvaluationError(f"sequence folder {folder} does not exist (--data_path must be "
                                  "the odometry root holding sequences/ and poses/)")
    gt_poses = read_poses_file(layout.poses_path(sequence))
    if len(gt_poses) < SNIPPET_LENGTH:
        raise PoseEvaluationError(f"{layout.poses_path(sequence)} lists {len(gt_poses)} frames, "
                                  f"fewer than one snippet of {SNIPPET_LENGTH}")
    paths = [layout.image_path(sequence, frame, image_folder=camera)
             for frame in range(len(gt_poses))]
    for path in paths:
        if not path.is_file():
            raise PoseEvaluationError(f"frame {path} does not exist ({layout.poses_path(sequence)} "
                                      f"lists {len(gt_poses)} frames; --camera {camera} reads "
                                      f"image_{camera}, --png switches .jpg to .png)")
    return SequenceInput(sequence, gt_poses, paths)


def evaluate(args: PoseEvalArgs) -> dict:
    """Runs the evaluation the arguments describe, printing as the original does.

    Returns:
        ``{"sequences": {"09": {ate_mean, ate_std, num_snippets, num_frames, ...}}, ...}``.

    Raises:
        ValueError (PoseEvaluationError, WeightsFolderError, DataError): bad input, named.
    """
    if args.output_dir:
        check_output_folder(args.output_dir, "--output_dir")
    if args.batch_size < 1:
        raise ValueError(f"--batch_size={args.batch_size} must be at least 1")
    if args.camera not in (0, 1, 2, 3):
        raise ValueError(f"--camera={args.camera} must be 0..3 (image_0 .. image_3)")
    if args.protocol not in PROTOCOLS:
        raise ValueError(f"--protocol={args.protocol} must be one of {', '.join(PROTOCOLS)}")
    if not args.data_path:
        raise ValueError("--data_path (the odometry root holding sequences/ and poses/) is "
                         "required")
    data_path = Path(args.data_path).expanduser()
    if not data_path.is_dir():
        raise ValueError(f"--data_path {data_path} does not exist")
    sequences = parse_sequences(args.eval_split, args.sequences)
    layout = KittiOdometryLayout(data_path, "png" if args.png else "jpg")
    inputs = [check_sequence(layout, sequence, args.camera) for sequence in sequences]

    loaded = load_networks_from_flags(args, with_depth=False, with_pose=True,
                                      check_config=check_pose_config)
    config, pose_net, folder = loaded.config, loaded.pose, loaded.folder
    print(f"-> Loaded the ResNet-{config.num_layers} pose network from {folder}; feed size "
          f"{config.width}x{config.height}")
    out_dir = Path(args.output_dir).expanduser() if args.output_dir else folder
    results = {}
    for item in inputs:
        name = f"{item.sequence:02d}"
        print(f"-> Computing pose predictions on sequence {name} ({len(item.image_paths)} "
              f"frames of image_{args.camera})")
        bar = ProgressBar(len(item.image_paths) - 1, unit="pairs")
        pred = predict_transforms(pose_net, config.height, config.width,
                                  iterate_frames(item.image_paths), args.batch_size, bar.update)
        bar.close()
        result = evaluate_poses(pred, item.gt_poses, SNIPPET_LENGTH, args.protocol,
                                args.include_short_snippets)
        print(f"\n{format_result(result)}\n")
        record = dict(ate_mean=result.mean, ate_std=result.std,
                      num_snippets=result.num_snippets, num_frames=result.num_frames)
        if args.save_pred_poses:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"poses_{name}.npy"
            np.save(path, pred)
            print(f"-> Predictions saved to {path}")
            record["pred_poses"] = str(path)
        results[name] = record
    summary = dict(sequences=results, protocol=args.protocol, snippet_length=SNIPPET_LENGTH,
                   include_short_snippets=bool(args.include_short_snippets),
                   camera=args.camera, source=str(folder))
    if args.output_json:
        path = Path(args.output_json).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {' '.join(argv[1:])}")
    evaluate(PoseEvalArgs.from_flags(flags.FLAGS))


def define_flags() -> None:
    """Defines the tool's flags (only when run as a tool, so importing defines nothing)."""
    flags.DEFINE_string("load_weights_folder", None, "Weights folder (ours, or the original's .pth "
                        "files) holding the pose network (pose_encoder and pose), or a released "
                        "model's name (e.g. mono_640x192, downloaded on first use).")
    flags.DEFINE_string("model_zoo", None, "Model name instead of --load_weights_folder (e.g. "
                        "mono_640x192 or monodepth2_resnet18_posenet_kitti_mono_640x192; "
                        "downloaded on first use; see monodepth_tf.weights.zoo).")
    flags.DEFINE_string("data_path", None, "KITTI odometry root holding sequences/ and poses/.")
    flags.DEFINE_string("eval_split", None, "odom_9 or odom_10 (odom_<n>: sequence n), as the "
                        "original; default: sequences 09 and 10.")
    flags.DEFINE_list("sequences", None, "Comma-separated sequence numbers instead of "
                      "--eval_split (e.g. 9,10).")
    flags.DEFINE_integer("camera", 2, "Image folder image_<camera>: 2 the left colour camera "
                         "(the original's), 0 the left grayscale one (fed as three channels).",
                         lower_bound=0, upper_bound=3)
    flags.DEFINE_bool("png", False, "The images are .png (default .jpg, as the original).")
    flags.DEFINE_integer("batch_size", 16, "Frame pairs per forward pass.", lower_bound=1)
    flags.DEFINE_enum("protocol", "original", list(PROTOCOLS), "original: chain the predicted "
                      "and ground-truth frame-to-frame transforms alike, as the original; "
                      "relative: chain the inverted predictions and compare with the ground-truth "
                      "poses relative to each snippet's first frame.")
    flags.DEFINE_bool("include_short_snippets", False, "Also score the last snippets, shorter "
                      "than 5 frames, as the original's loop does.")
    flags.DEFINE_bool("save_pred_poses", False, "Save the predicted frame-to-frame transforms "
                      "[N - 1, 4, 4] as poses_<NN>.npy in the weights folder (or --output_dir).")
    flags.DEFINE_string("output_dir", None, "Where --save_pred_poses writes (default: the weights "
                        "folder).")
    flags.DEFINE_string("output_json", None, "Also write the results to this JSON file.")


def run():
    define_flags()
    run_tool(main)
