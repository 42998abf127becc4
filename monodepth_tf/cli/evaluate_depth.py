"""bin/evaluate_depth: the Eigen depth-evaluation protocol on a test split, as the original runs it.

    bin/evaluate_depth --load_weights_folder ~/tmp/mdp/models/weights_19 --eval_mono \\
        --data_path ~/kitti_data --eval_split eigen --split_dir splits
    bin/evaluate_depth --load_weights_folder weights/stereo_640x192 --eval_split benchmark \\
        --data_path ~/kitti_data/depth_selection --png --split_dir splits

Ground truth comes from ``<split_dir>/<eval_split>/gt_depths.npz`` (``bin/export_gt_depth``
writes it for ``eigen`` and ``eigen_benchmark``; any split folder holding test_files.txt and
gt_depths.npz works, e.g. the synthetic world's ``splits/synthetic``). The Garg crop is applied
on ``eigen`` only. ``--eval_mono`` scales each image by its median ratio (the ratios' median
and spread are printed); ``--eval_stereo`` multiplies by 5.4 and does not median-scale.
Prints the original's table; ``--output_json`` also writes the numbers.

``--eval_split benchmark`` (the KITTI depth-prediction benchmark, whose test ground truth is not
public) predicts its 500 test images and writes the submission instead of scoring:
``{index:010d}.png`` depth maps and ``submission.zip`` in
``<weights folder>/benchmark_predictions/`` (or ``--eval_out_dir``); see
:mod:`monodepth_tf.evaluation.kitti_submission` for the format and where the images are read.
``--eval_eigen_to_benchmark`` scores predictions of the ``eigen`` test list
(``--ext_disp_to_eval``, or the network run on the eigen list's images) on ``eigen_benchmark``,
through ``<split_dir>/benchmark/eigen_to_benchmark_ids.npy``. ``--no_eval`` stops after the
prediction (with ``--save_pred_disps``: keep them for later).
"""

import dataclasses
import json
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from absl import flags

from monodepth_tf.cli.common import (RUNTIME_HELP, RUNTIMES, check_runtime,
                                      load_networks_from_flags, run_tool,
                                      weights_folder_from_flags)
from monodepth_tf.cli.progress import show_in_help
from monodepth_tf.data.images import load_rgb
from monodepth_tf.data.kitti import KittiRawLayout
from monodepth_tf.data.layout import STEREO_SCALE_FACTOR
from monodepth_tf.data.splits import default_split_dir, read_split
from monodepth_tf.evaluation.depth import (GARG_CROP_SPLITS, GT_FILE, EvaluationError,
                                           check_test_images, evaluate_disparities,
                                           format_table, load_gt_depths, summarize)
from monodepth_tf.evaluation.kitti_submission import (BENCHMARK_SPLIT, EIGEN_TO_BENCHMARK_FILE,
                                                      PREDICTIONS_DIR, SUBMISSION_HEIGHT,
                                                      SUBMISSION_WIDTH, benchmark_image_paths,
                                                      eigen_to_benchmark,
                                                      read_eigen_to_benchmark_ids,
                                                      write_submission)
from monodepth_tf.files import check_output_folder
from monodepth_tf.progress import ProgressBar

GT_SPLITS_EXPORTED = ("eigen", "eigen_benchmark")
NO_NETWORK_HINT = "; use --ext_disp_to_eval to evaluate saved disparities"


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
    eval_eigen_to_benchmark: bool = False
    no_eval: bool = False
    png: bool = False
    batch_size: int = 16
    eval_out_dir: Optional[str] = None
    output_dir: Optional[str] = None
    output_json: Optional[str] = None
    runtime: str = "tensorflow"

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
        else:
            how = ("put the split's ground-truth maps there (key 'data', one [H, W] map per "
                   "line of test_files.txt; bin/export_gt_depth writes them for eigen and "
                   "eigen_benchmark)")
        raise EvaluationError(f"split {split!r} has no ground truth: {path} does not exist; "
                              f"{how}")
    return load_gt_depths(path)


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


def split_image_paths(args, split_dir: Path, split: str) -> List[Path]:
    """The image of every line of ``<split_dir>/<split>/test_files.txt``, each checked to exist
    (before any network is loaded): KITTI raw frames, or the benchmark's test images."""

    if not args.data_path:
        raise ValueError("--data_path is required to run a network on the split's images")
    entries = read_split(split_dir, split, "test")
    ext = "png" if args.png else "jpg"
    if split == BENCHMARK_SPLIT:
        return benchmark_image_paths(args.data_path, entries, ext)
    layout = KittiRawLayout(args.data_path, ext)
    paths = [layout.image_path(entry) for entry in entries]
    check_test_images(paths, split, layout.ext, args.data_path)
    return paths


def predict_disparities(args, paths: List[Path]) -> Tuple[np.ndarray, Path]:
    """Runs the network of ``--load_weights_folder`` / ``--model_zoo`` on ``paths``:
    ``(scaled disparities [N, h, w] at the feed size, the weights folder)``."""
    from monodepth_tf.inference.predictor import DisparityPredictor

    loaded = load_networks_from_flags(args, hint=NO_NETWORK_HINT)
    config = loaded.config
    print(f"-> Loaded ResNet-{config.num_layers} weights from {loaded.folder}; feed size "
          f"{config.width}x{config.height}")
    predictor = DisparityPredictor(loaded.depth, config, args.runtime)
    images = (load_rgb(path) for path in paths)
    outputs, bar = [], ProgressBar(len(paths))
    for disps in predictor.iterate(images, args.batch_size, args.post_process):
        outputs.append(disps)
        bar.update(len(disps))
    bar.close()
    return np.concatenate(outputs), loaded.folder


def output_dir_flag(args) -> Optional[Path]:
    """``--eval_out_dir`` (or its older name ``--output_dir``), None when neither is set."""
    if args.eval_out_dir and args.output_dir and \
            Path(args.eval_out_dir).expanduser() != Path(args.output_dir).expanduser():
        raise ValueError(f"--eval_out_dir {args.eval_out_dir} and --output_dir "
                         f"{args.output_dir} differ: give one (--output_dir is its older name)")
    chosen = args.eval_out_dir or args.output_dir
    flag = "--eval_out_dir" if args.eval_out_dir else "--output_dir"
    return check_output_folder(chosen, flag) if chosen else None


def check_flags(args: EvalArgs) -> None:
    """Flag combinations that cannot work, refused before anything is read."""
    if args.batch_size < 1:
        raise ValueError(f"--batch_size={args.batch_size} must be at least 1")
    scoring = args.eval_split != BENCHMARK_SPLIT and not args.no_eval
    if (scoring and args.eval_mono == args.eval_stereo) or (args.eval_mono and args.eval_stereo):
        raise ValueError("choose mono or stereo evaluation: give exactly one of --eval_mono and "
                         "--eval_stereo")
    if args.eval_eigen_to_benchmark and args.eval_split == BENCHMARK_SPLIT:
        raise ValueError("--eval_eigen_to_benchmark maps predictions of the eigen test list onto "
                         "eigen_benchmark's; it does not apply to --eval_split benchmark")
    output_dir_flag(args)
    check_runtime(args.runtime)


def evaluate(args: EvalArgs) -> dict:
    """Runs the evaluation the arguments describe, printing as the original does.

    ``--eval_split benchmark`` writes the KITTI benchmark's submission files instead of
    metrics (:mod:`monodepth_tf.evaluation.kitti_submission`); ``--no_eval`` stops after
    predicting (and ``--save_pred_disps``).

    Returns:
        the metrics (:func:`monodepth_tf.evaluation.depth.summarize`) and what was evaluated;
        for the benchmark split, where the submission went.

    Raises:
        ValueError (EvaluationError, WeightsFolderError, DataError): bad input, named.
    """
    check_flags(args)
    benchmark = args.eval_split == BENCHMARK_SPLIT
    scoring = not (benchmark or args.no_eval)
    split_dir = resolve_split_dir(args)
    gt_depths, ids = read_targets(args, split_dir, scoring)
    median_scaling, scale_factor = depth_scaling(args, scoring)
    disps, source, folder = obtain_disparities(args, split_dir, gt_depths, ids)
    disps = match_ground_truth(args, split_dir, disps, source, gt_depths, ids)
    record = dict(split=args.eval_split, num_images=len(disps),
                  post_process=bool(args.post_process), source=str(source))
    out_dir = output_dir_flag(args)
    if args.save_pred_disps and folder is not None:
        record["pred_disps"] = str(save_disparities(args, disps, out_dir or folder))

    if benchmark:
        record.update(write_benchmark_submission(args, disps, out_dir, folder or source.parent))
    elif args.no_eval:
        print("-> --no_eval: predictions made, not scored.")
    else:
        record = score(args, disps, gt_depths, median_scaling, scale_factor, record)
    if args.output_json:
        path = Path(args.output_json).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2) + "\n")
    print("\n-> Done!")
    return record


def resolve_split_dir(args) -> Path:
    """``--split_dir``, or the project's ``splits/`` when it is not given."""
    if args.split_dir:
        return Path(args.split_dir).expanduser()
    return default_split_dir()


def read_targets(args, split_dir: Path, scoring: bool
                 ) -> Tuple[Optional[List[np.ndarray]], Optional[np.ndarray]]:
    """``(ground-truth maps, eigen -> eigen_benchmark ids)``: the maps when scoring, the ids with
    ``--eval_eigen_to_benchmark`` (else None), checked to be as many."""
    gt_depths = read_ground_truth(split_dir, args.eval_split) if scoring else None
    ids = read_eigen_to_benchmark_ids(split_dir) if args.eval_eigen_to_benchmark else None
    if ids is not None and gt_depths is not None and len(ids) != len(gt_depths):
        raise EvaluationError(f"{split_dir / BENCHMARK_SPLIT / EIGEN_TO_BENCHMARK_FILE} maps "
                              f"{len(ids)} images but {gt_path(split_dir, args.eval_split)} holds "
                              f"{len(gt_depths)} ground-truth maps")
    return gt_depths, ids


def depth_scaling(args, scoring: bool) -> Tuple[bool, float]:
    """``(median scaling, scale factor)`` of the predicted depths; when scoring, the mode is
    printed (stereo: no median scaling, x 5.4)."""
    median_scaling = not args.disable_median_scaling
    scale_factor = args.pred_depth_scale_factor
    if scoring and args.eval_stereo:
        print(f"Stereo evaluation - disabling median scaling, scaling by {STEREO_SCALE_FACTOR}")
        median_scaling, scale_factor = False, STEREO_SCALE_FACTOR
    elif scoring:
        print("Mono evaluation - " + ("using median scaling" if median_scaling
                                      else "median scaling disabled"))
    return median_scaling, scale_factor


def obtain_disparities(args, split_dir: Path, gt_depths, ids: Optional[np.ndarray]
                       ) -> Tuple[np.ndarray, Path, Optional[Path]]:
    """``(disparities, where they came from, weights folder or None)``: those saved in
    ``--ext_disp_to_eval``, else the network's on the split's images (with
    ``--eval_eigen_to_benchmark``: on the eigen list's)."""
    if args.ext_disp_to_eval:
        disps, source = saved_disparities(args, split_dir)
        return disps, source, None
    disps, folder = network_disparities(args, split_dir, gt_depths, ids)
    return disps, folder, folder


def saved_disparities(args, split_dir: Path) -> Tuple[np.ndarray, Path]:
    """``(disparities, file)`` of ``--ext_disp_to_eval``; for the benchmark split, checked to be
    one per test line."""
    source = Path(args.ext_disp_to_eval).expanduser()
    disps = load_saved_disparities(source)
    print(f"-> Loaded {len(disps)} disparities from {source}")
    if args.eval_split == BENCHMARK_SPLIT:
        count = len(read_split(split_dir, BENCHMARK_SPLIT, "test"))
        if len(disps) != count:
            raise EvaluationError(f"--ext_disp_to_eval {source} holds {len(disps)} "
                                  f"disparities but {split_dir / BENCHMARK_SPLIT} "
                                  f"/ test_files.txt lists {count} images")
    return disps, source


def network_disparities(args, split_dir: Path, gt_depths, ids: Optional[np.ndarray]
                        ) -> Tuple[np.ndarray, Path]:
    """``(disparities, weights folder)`` of the network run on the images of the split it
    predicts; the flags, the images and their count are checked before it is loaded."""
    pred_split = "eigen" if ids is not None else args.eval_split
    weights_folder_from_flags(args, NO_NETWORK_HINT)  # flag errors before the images'
    paths = split_image_paths(args, split_dir, pred_split)
    if ids is not None and ids.max(initial=-1) >= len(paths):
        raise EvaluationError(f"{split_dir / BENCHMARK_SPLIT / EIGEN_TO_BENCHMARK_FILE} "
                              f"indexes up to {ids.max()} but "
                              f"{split_dir / pred_split / 'test_files.txt'} lists "
                              f"{len(paths)} images")
    if ids is None and gt_depths is not None and len(paths) != len(gt_depths):
        raise EvaluationError(f"{split_dir / pred_split / 'test_files.txt'} lists "
                              f"{len(paths)} images but "
                              f"{gt_path(split_dir, args.eval_split)} holds "
                              f"{len(gt_depths)} maps")
    return predict_disparities(args, paths)


def match_ground_truth(args, split_dir: Path, disps: np.ndarray, source: Path, gt_depths,
                       ids: Optional[np.ndarray]) -> np.ndarray:
    """The disparities in the order of the split being scored: the eigen predictions mapped
    onto ``eigen_benchmark`` with ``ids``, else as given (checked to be one per ground-truth
    map; only saved ones can differ)."""
    if ids is not None:
        disps = eigen_to_benchmark(disps, ids)
        print(f"-> Mapped the eigen predictions onto the {len(disps)} images of "
              f"{args.eval_split} ({EIGEN_TO_BENCHMARK_FILE})")
    elif gt_depths is not None and len(disps) != len(gt_depths):
        raise EvaluationError(f"--ext_disp_to_eval {source} holds {len(disps)} disparities "
                              f"but {gt_path(split_dir, args.eval_split)} holds "
                              f"{len(gt_depths)} ground-truth maps")
    return disps


def save_disparities(args, disps: np.ndarray, target: Path) -> Path:
    """``--save_pred_disps``: ``<target>/disps_<split>_split.npy`` (the file is returned)."""
    target.mkdir(parents=True, exist_ok=True)
    out = target / f"disps_{args.eval_split}_split.npy"
    np.save(out, disps)
    print(f"-> Saved predicted disparities to {out}")
    return out


def score(args, disps: np.ndarray, gt_depths, median_scaling: bool, scale_factor: float,
          record: dict) -> dict:
    """Scores the disparities against the ground truth and prints the scaling ratios (when
    median scaling) and the original's table; returns the metrics, then ``record``, then the
    protocol's settings."""
    garg_crop = args.eval_split in GARG_CROP_SPLITS
    results = evaluate_disparities(disps, gt_depths, garg_crop, median_scaling, scale_factor)
    summary = summarize(results, median_scaling)
    if median_scaling:
        print(f" Scaling ratios | med: {summary['ratio_median']:0.3f} | "
              f"std: {summary['ratio_std']:0.3f}")
    print(format_table(summary))
    return dict(summary, **record, mode="stereo" if args.eval_stereo else "mono",
                garg_crop=garg_crop, median_scaling=median_scaling, scale_factor=scale_factor)


def write_benchmark_submission(args, disps: np.ndarray, out_dir: Optional[Path],
                               beside: Path) -> dict:
    """The KITTI benchmark's submission files: into ``out_dir``, else
    ``<beside>/benchmark_predictions/`` (``beside``: the weights folder, or the folder of
    ``--ext_disp_to_eval``)."""
    target = out_dir or beside / PREDICTIONS_DIR
    if args.eval_mono:
        print(f"note: the submission holds {STEREO_SCALE_FACTOR} / disparity, as the original "
              "writes it; a mono model's depths have no metric scale")
    submission = write_submission(disps, target)
    print(f"-> The KITTI benchmark's test ground truth is not public, so nothing is scored: "
          f"wrote {len(submission.files)} depth PNGs ({SUBMISSION_WIDTH}x{SUBMISSION_HEIGHT}, "
          f"uint16 metres x 256) to {submission.folder}; upload {submission.zip_path}")
    return dict(submission_dir=str(submission.folder), submission_zip=str(submission.zip_path))


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {' '.join(argv[1:])}")
    evaluate(EvalArgs.from_flags(flags.FLAGS))


PROGRAM_FLAGS = tuple(f.name for f in dataclasses.fields(EvalArgs))


def define_flags() -> None:
    """Defines the tool's flags (only when run as a tool, so importing defines nothing)."""
    flags.DEFINE_string("load_weights_folder", None, "Weights folder (ours, or the original's .pth "
                        "files) of the depth network to evaluate, or a released model's name "
                        "(e.g. mono_640x192, downloaded on first use).")
    flags.DEFINE_string("model_zoo", None, "Model name instead of --load_weights_folder: the "
                        "original's (mono_640x192, ...) or GluonCV's; downloaded on first use "
                        "(see monodepth_tf.weights.zoo).")
    flags.DEFINE_string("data_path", None, "Root of the KITTI raw data (the date folders); for "
                        "--eval_split benchmark, KITTI's depth_selection/ folder, its "
                        "test_depth_prediction_anonymous/ or the folder holding depth_selection/.")
    flags.DEFINE_string("eval_split", "eigen", "Test split folder: eigen, eigen_benchmark, any "
                        "folder of --split_dir holding test_files.txt and gt_depths.npz, or "
                        "benchmark (writes the KITTI benchmark's submission files, no metrics).")
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
    flags.DEFINE_bool("eval_eigen_to_benchmark", False, "The predictions are of the eigen test "
                      "list: map them onto --eval_split eigen_benchmark's with "
                      "<split_dir>/benchmark/eigen_to_benchmark_ids.npy.")
    flags.DEFINE_bool("no_eval", False, "Predict (and --save_pred_disps) without scoring.")
    flags.DEFINE_bool("png", False, "The images are .png (default .jpg).")
    flags.DEFINE_integer("batch_size", 16, "Images per forward pass.", lower_bound=1)
    flags.DEFINE_string("eval_out_dir", None, "Where --save_pred_disps and the benchmark's "
                        "submission write (default: the weights folder, and its "
                        "benchmark_predictions/).")
    flags.DEFINE_string("output_dir", None, "Older name of --eval_out_dir.")
    flags.DEFINE_string("output_json", None, "Also write the metrics to this JSON file.")
    flags.DEFINE_enum("runtime", "tensorflow", RUNTIMES, RUNTIME_HELP)


def run():
    define_flags()
    show_in_help(flags.FLAGS, PROGRAM_FLAGS)
    run_tool(main)
