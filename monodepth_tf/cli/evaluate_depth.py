"""bin/evaluate_depth: the Eigen depth-evaluation protocol on a test split, as the original runs it.

    bin/evaluate_depth --load_weights_folder ~/tmp/mdp/models/weights_19 --eval_mono \\
        --data_path ~/kitti_data --eval_split eigen --split_dir splits

Ground truth comes from ``<split_dir>/<eval_split>/gt_depths.npz`` (``bin/export_gt_depth``
writes it for ``eigen`` and ``eigen_benchmark``; any split folder holding test_files.txt and
gt_depths.npz works, e.g. the synthetic world's ``splits/synthetic``). The Garg crop is applied
on ``eigen`` only. ``--eval_mono`` scales each image by its median ratio (the ratios' median
and spread are printed); ``--eval_stereo`` multiplies by 5.4 and does not median-scale.
Prints the original's table; ``--output_json`` also writes the numbers.
"""

import dataclasses
import json
from pathlib import Path
from typing import Optional

import numpy as np
from absl import flags

from monodepth_tf.cli.common import run_tool
from monodepth_tf.cli.progress import ProgressBar, show_in_help
from monodepth_tf.evaluation import (GARG_CROP_SPLITS, GT_FILE, STEREO_SCALE_FACTOR,
                                     EvaluationError, evaluate_disparities, format_table,
                                     load_gt_depths, summarize)

GT_SPLITS_EXPORTED = ("eigen", "eigen_benchmark")


@dataclasses.dataclass
class EvalArgs:
    """The tool's flags, so that :func:`evaluate` also runs without absl (field = flag)."""

    load_weights_folder: Optional[str] = None
    model_zoo: Optional[str] = None
    data_path: Optional[str] = None
    eval_split: str = "eigen"
    split_dir: Optional[str] = None
    eval_mono: bool = False
    eval_stereo: bool = False
    disable_median_scaling: bool = False
    pred_depth_scale_factor: float = 1.0
    post_process: bool = False
    save_pred_disps: bool = False
    ext_disp_to_eval: Optional[str] = None
    png: bool = False
    batch_size: int = 16
    output_dir: Optional[str] = None
    output_json: Optional[str] = None

    @classmethod
    def from_flags(cls, values) -> "EvalArgs":
        return cls(**{f.name: getattr(values, f.name) for f in dataclasses.fields(cls)})


def gt_path(split_dir: Path, split: str) -> Path:
    return split_dir / split / GT_FILE


def read_ground_truth(split_dir: Path, split: str):
    """The split's ground-truth maps; a missing file is an error that says how to make it."""
    path = gt_path(split_dir, split)
    if not path.is_file():
        if split in GT_SPLITS_EXPORTED:
            how = (f"make it with bin/export_gt_depth --data_path <kitti raw> --split {split} "
                   f"--split_dir {split_dir}")
        elif split == "benchmark":
            how = ("the KITTI benchmark's test ground truth is not public: evaluate on eigen or "
                   "eigen_benchmark, or submit predictions saved with --save_pred_disps")
        else:
            how = ("put the split's ground-truth maps there (key 'data', one [H, W] map per "
                   "line of test_files.txt; bin/export_gt_depth writes them for eigen and "
                   "eigen_benchmark)")
        raise EvaluationError(f"split {split!r} has no ground truth: {path} does not exist; "
                              f"{how}")
    return load_gt_depths(path)


def weights_folder_from_flags(args) -> Path:
    if args.load_weights_folder and args.model_zoo:
        raise ValueError("give either --load_weights_folder or --model_zoo, not both")
    if args.model_zoo:
        from monodepth_tf import zoo
        return zoo.weights_folder(args.model_zoo)
    if not args.load_weights_folder:
        raise ValueError("--load_weights_folder (or --model_zoo) is required to run a network; "
                         "use --ext_disp_to_eval to evaluate saved disparities")
    folder = Path(args.load_weights_folder).expanduser()
    if not folder.is_dir():
        raise ValueError(f"--load_weights_folder {folder} does not exist")
    return folder


def load_saved_disparities(path: Path) -> np.ndarray:
    """``[N, h, w]`` disparities from a .npy file (``[N, 1, h, w]`` is accepted)."""
    if not path.is_file():
        raise ValueError(f"--ext_disp_to_eval {path} does not exist")
    try:
        disps = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"--ext_disp_to_eval {path} is not a readable .npy array ({error})") \
            from None
    if disps.ndim == 4 and disps.shape[1] == 1:
        disps = disps[:, 0]
    if disps.ndim != 3 or not np.issubdtype(disps.dtype, np.floating):
        raise ValueError(f"--ext_disp_to_eval {path} holds {disps.dtype} {list(disps.shape)}, "
                         "expected float disparities [N, h, w]")
    return disps.astype(np.float32)


def predict_split_disparities(args, split_dir: Path, folder: Path, count: int) -> np.ndarray:
    """Runs the network of ``folder`` on the split's test images (``count`` of them)."""
    from monodepth_tf.data.kitti import KittiRawLayout, load_rgb, read_split
    from monodepth_tf.predict import DisparityPredictor
    from monodepth_tf.weights.folder import load_networks

    if not args.data_path:
        raise ValueError("--data_path is required to run a network on the split's images")
    entries = read_split(split_dir, args.eval_split, "test")
    if len(entries) != count:
        raise EvaluationError(f"{split_dir / args.eval_split / 'test_files.txt'} lists "
                              f"{len(entries)} images but "
                              f"{gt_path(split_dir, args.eval_split)} holds {count} maps")
    layout = KittiRawLayout(args.data_path, "png" if args.png else "jpg")
    paths = [layout.image_path(entry) for entry in entries]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise EvaluationError(f"{len(missing)} of the {len(paths)} test images of split "
                              f"{args.eval_split!r} are missing, the first: {missing[0]} "
                              f"(--data_path {args.data_path}; images are read as "
                              f".{layout.ext}{'' if args.png else ', add --png for .png files'})")
    if args.model_zoo:
        from monodepth_tf import zoo
        config, depth, _ = zoo.load(args.model_zoo, with_pose=False)  # checks the ResNet depth
    else:
        config, depth, _ = load_networks(folder, with_pose=False)
    print(f"-> Loaded ResNet-{config.num_layers} weights from {folder}; feed size "
          f"{config.width}x{config.height}")
    predictor = DisparityPredictor(depth, config)
    images = (load_rgb(path) for path in paths)
    outputs, bar = [], ProgressBar(len(entries))
    for disps in predictor.iterate(images, args.batch_size, args.post_process):
        outputs.append(disps)
        bar.update(len(disps))
    bar.close()
    return np.concatenate(outputs)


def evaluate(args: EvalArgs) -> dict:
    """Runs the evaluation the arguments describe, printing as the original does.

    Returns:
        the metrics (:func:`monodepth_tf.evaluation.summarize`) and what was evaluated.

    Raises:
        ValueError (EvaluationError, WeightsFolderError, DataError): bad input, named.
    """
    if args.batch_size < 1:
        raise ValueError(f"--batch_size={args.batch_size} must be at least 1")
    if args.eval_mono == args.eval_stereo:
        raise ValueError("choose mono or stereo evaluation: give exactly one of --eval_mono and "
                         "--eval_stereo")
    split_dir = Path(args.split_dir).expanduser() if args.split_dir else None
    if split_dir is None:
        from monodepth_tf.data.kitti import default_split_dir
        split_dir = default_split_dir()
    gt_depths = read_ground_truth(split_dir, args.eval_split)

    median_scaling = not args.disable_median_scaling
    scale_factor = args.pred_depth_scale_factor
    if args.eval_stereo:
        print(f"Stereo evaluation - disabling median scaling, scaling by {STEREO_SCALE_FACTOR}")
        median_scaling, scale_factor = False, STEREO_SCALE_FACTOR
    else:
        print("Mono evaluation - " + ("using median scaling" if median_scaling
                                      else "median scaling disabled"))

    if args.ext_disp_to_eval:
        source = Path(args.ext_disp_to_eval).expanduser()
        disps = load_saved_disparities(source)
        print(f"-> Loaded {len(disps)} disparities from {source}")
        if len(disps) != len(gt_depths):
            raise EvaluationError(f"--ext_disp_to_eval {source} holds {len(disps)} disparities "
                                  f"but {gt_path(split_dir, args.eval_split)} holds "
                                  f"{len(gt_depths)} ground-truth maps")
    else:
        folder = weights_folder_from_flags(args)
        source = folder
        disps = predict_split_disparities(args, split_dir, folder, len(gt_depths))
        if args.save_pred_disps:
            out_dir = Path(args.output_dir).expanduser() if args.output_dir else folder
            out_dir.mkdir(parents=True, exist_ok=True)
            out = out_dir / f"disps_{args.eval_split}_split.npy"
            np.save(out, disps)
            print(f"-> Saved predicted disparities to {out}")

    garg_crop = args.eval_split in GARG_CROP_SPLITS
    results = evaluate_disparities(disps, gt_depths, garg_crop, median_scaling, scale_factor)
    summary = summarize(results, median_scaling)
    if median_scaling:
        print(f" Scaling ratios | med: {summary['ratio_median']:0.3f} | "
              f"std: {summary['ratio_std']:0.3f}")
    print(format_table(summary))
    record = dict(summary, split=args.eval_split, num_images=len(results),
                  mode="stereo" if args.eval_stereo else "mono", garg_crop=garg_crop,
                  median_scaling=median_scaling, scale_factor=scale_factor,
                  post_process=bool(args.post_process), source=str(source))
    if args.output_json:
        path = Path(args.output_json).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
    print("\n-> Done!")
    return record


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {' '.join(argv[1:])}")
    evaluate(EvalArgs.from_flags(flags.FLAGS))


PROGRAM_FLAGS = tuple(f.name for f in dataclasses.fields(EvalArgs))


def define_flags() -> None:
    """Defines the tool's flags (only when run as a tool, so importing defines nothing)."""
    flags.DEFINE_string("load_weights_folder", None, "Weights folder (ours, or the original's .pth "
                        "files) of the depth network to evaluate.")
    flags.DEFINE_string("model_zoo", None, "Model-zoo name instead of --load_weights_folder (see "
                        "monodepth_tf.zoo; weights from $MONODEPTH_ZOO_DIR/<name>/).")
    flags.DEFINE_string("data_path", None, "Root of the KITTI raw data (the date folders).")
    flags.DEFINE_string("eval_split", "eigen", "Test split folder: eigen, eigen_benchmark, benchmark "
                        "or any folder of --split_dir holding test_files.txt and gt_depths.npz.")
    flags.DEFINE_string("split_dir", None, "Folder of split folders (default: the project's "
                        "splits/).")
    flags.DEFINE_bool("eval_mono", False, "Mono model: per-image median scaling.")
    flags.DEFINE_bool("eval_stereo", False, "Stereo model: no median scaling, depth x 5.4.")
    flags.DEFINE_bool("disable_median_scaling", False, "Do not median-scale (mono).")
    flags.DEFINE_float("pred_depth_scale_factor", 1.0, "Multiply predicted depths by this "
                       "(--eval_stereo sets 5.4).")
    flags.DEFINE_bool("post_process", False, "Blend the prediction with that of the mirror image.")
    flags.DEFINE_bool("save_pred_disps", False, "Save the predicted disparities as "
                      "disps_<split>_split.npy in the weights folder (or --output_dir).")
    flags.DEFINE_string("ext_disp_to_eval", None, "Evaluate these saved disparities (.npy, "
                        "[N, h, w]) instead of running a network.")
    flags.DEFINE_bool("png", False, "The images are .png (default .jpg).")
    flags.DEFINE_integer("batch_size", 16, "Images per forward pass.", lower_bound=1)
    flags.DEFINE_string("output_dir", None, "Where --save_pred_disps writes (default: the weights "
                        "folder).")
    flags.DEFINE_string("output_json", None, "Also write the metrics to this JSON file.")


def run():
    define_flags()
    show_in_help(flags.FLAGS, PROGRAM_FLAGS)
    run_tool(main)
