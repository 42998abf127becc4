"""Training options: the original's, with the same names and defaults, plus ours.

Flags are defined once (``define_training_flags``) and turned into one typed, validated
``TrainOptions`` (``from_flags``); contradictions are rejected before anything loads, naming
the flag at fault.
"""

import dataclasses
import math
import os
from pathlib import Path
from typing import Optional, Tuple

from absl import flags

from monodepth_tf.config import POSE_MODEL_TYPES, ModelConfig, PoseModelType
from monodepth_tf.data.frames import FrameId, frame_key
from monodepth_tf.losses.options import LossOptions
from monodepth_tf.weights import zoo
from monodepth_tf.weights.folder import MODEL_NAMES as MODELS_TO_LOAD

MODES = {
    "mono": dict(frame_ids=("0", "-1", "1"), use_stereo=False),
    "stereo": dict(frame_ids=("0",), use_stereo=True, split="eigen_full"),
    "mono_stereo": dict(frame_ids=("0", "-1", "1"), use_stereo=True),
}
SPLITS = ("eigen_zhou", "eigen_full", "odom", "benchmark")


# The numeric options' ranges: name -> (lowest value, strict: the lowest value itself is refused,
# a note for the message, e.g. what 0 means). Floats must also be finite.
NUMBER_RANGES = {
    "height": (0, True, ""), "width": (0, True, ""),
    "batch_size": (1, False, ""),
    "learning_rate": (0, True, ""),
    "num_epochs": (1, False, ""),
    "scheduler_step_size": (1, False, " (epochs between learning-rate drops)"),
    "disparity_smoothness": (0, False, " (0: no smoothness term)"),
    "min_depth": (0, True, ""), "max_depth": (0, True, ""),
    "log_frequency": (1, False, " (steps between log lines)"),
    "save_frequency": (1, False, " (epochs between weight folders)"),
    "save_steps": (0, False, " (0: checkpoints at epoch ends only)"),
    "max_steps": (0, False, " (0: no limit)"),
    "val_samples": (0, False, " (0: all)"),
    "num_workers": (0, False, ""),
    "seed": (0, False, ""),
    "frame_stride": (1, False, ""),
    "target_fps": (0, False, " (0: off)"),
    "skip_static": (0, False, " (0: off)"),
}

# What a resumed run may change. A run started again while its folder holds a checkpoint is
# compared with its opt.json (monodepth_tf.training.resume): an option that changes what the
# checkpoint means (FIXED) refuses the resume, before any data loads or graph builds; one that
# does not (MAY_CHANGE) is taken, said in the log and recorded (opt.json, opt_history.jsonl);
# the run folder's own names (RUN_FOLDER) are what is resumed, not compared. --mode and
# --pretrained_base are presets of options compared here (frame_ids, use_stereo, split;
# weights_init); --verbose is not an option of the run. Every TrainOptions field is listed.
FIXED, MAY_CHANGE, RUN_FOLDER = "fixed", "may change", "run folder"
RESUME_RULES = {
    # the data: which samples, in which order (the resumed data position), as which pixels
    "dataset": (FIXED, "how frames are found and read"),
    "split": (FIXED, "which samples an epoch holds, hence where a resumed epoch continues"),
    "png": (FIXED, "which image files are read (JPEG or PNG pixels)"),
    "frame_stride": (FIXED, "which frames a folder dataset trains on"),
    "target_fps": (FIXED, "which frames a folder dataset trains on"),
    "skip_static": (FIXED, "which frames a folder dataset trains on"),
    "seed": (FIXED, "each epoch's order and augmentation, hence where a resumed epoch "
             "continues"),
    "batch_size": (FIXED, "what a step is: the step counter and the data position count "
                   "batches of this size"),
    # the networks and what their outputs mean
    "height": (FIXED, "the networks' input size"),
    "width": (FIXED, "the networks' input size"),
    "num_layers": (FIXED, "the encoders' architecture"),
    "scales": (FIXED, "the decoder's outputs and the loss"),
    "frame_ids": (FIXED, "the pose network's inputs and the loss"),
    "use_stereo": (FIXED, "the loss's source frames"),
    "pose_model_type": (FIXED, "the pose network"),
    "pose_model_input": (FIXED, "the pose network's inputs"),
    "predictive_mask": (FIXED, "the depth decoder and the loss"),
    "min_depth": (FIXED, "how disparities map to depths"),
    "max_depth": (FIXED, "how disparities map to depths"),
    "mixed_precision": (FIXED, "the compute dtype and the loss scale the checkpoint holds"),
    # the objective and the optimizer
    "disparity_smoothness": (FIXED, "the loss"),
    "v1_multiscale": (FIXED, "the loss"),
    "avg_reprojection": (FIXED, "the loss"),
    "disable_automasking": (FIXED, "the loss"),
    "no_ssim": (FIXED, "the loss"),
    "learning_rate": (FIXED, "Adam's schedule"),
    "scheduler_step_size": (FIXED, "Adam's schedule"),
    # where the run started: a resume takes the checkpoint's weights, so a new start is ignored
    "weights_init": (FIXED, "the starting weights, which a resume ignores"),
    "load_weights_folder": (FIXED, "the starting weights, which a resume ignores"),
    "models_to_load": (FIXED, "the starting weights, which a resume ignores"),
    # where the run ends, what it logs, saves and scores
    "num_epochs": (MAY_CHANGE, "where the run ends"),
    "max_steps": (MAY_CHANGE, "where the run ends"),
    "log_frequency": (MAY_CHANGE, "how often it logs"),
    "save_frequency": (MAY_CHANGE, "how often it writes weight folders"),
    "save_steps": (MAY_CHANGE, "how often it checkpoints"),
    "val_samples": (MAY_CHANGE, "how many val samples are scored (weights_best then compares "
                    "scores of different subsets)"),
    # how the same step is computed: rounding and devices only
    "num_workers": (MAY_CHANGE, "unused (tf.data decodes in parallel)"),
    "jit_compile": (MAY_CHANGE, "XLA compiles the same step"),
    "deterministic": (MAY_CHANGE, "op determinism of the same step"),
    "exact_loss": (MAY_CHANGE, "the same loss, the original's roundings"),
    "gpu": (MAY_CHANGE, "which devices share the same global batch"),
    # where the data is: a moved copy of it (the split names the samples)
    "data_path": (MAY_CHANGE, "where the frames are (a moved copy)"),
    "split_dir": (MAY_CHANGE, "where the split lists are (a moved copy)"),
    # presets: what they set (num_layers, height, width, frames) is compared on its own
    "model_zoo": (MAY_CHANGE, "a preset of options compared on their own"),
    "model_zoo_pose": (MAY_CHANGE, "a preset of options compared on their own"),
    "log_dir": (RUN_FOLDER, "the run folder is <log_dir>/<model_name>"),
    "model_name": (RUN_FOLDER, "the run folder is <log_dir>/<model_name>"),
}
# Options naming files or folders: compared as absolute paths.
PATH_OPTIONS = ("data_path", "split_dir", "load_weights_folder", "log_dir")


class OptionsError(ValueError):
    """Flags that contradict each other or name something that does not exist."""


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """Everything a training run needs; field names are the flags'."""

    data_path: str = ""
    log_dir: str = os.path.join(os.path.expanduser("~"), "tmp")
    model_name: str = "mdp"
    split: str = "eigen_zhou"
    split_dir: str = ""
    num_layers: int = 18
    dataset: str = "kitti"
    png: bool = False
    height: int = 192
    width: int = 640
    disparity_smoothness: float = 1e-3
    scales: Tuple[int, ...] = (0, 1, 2, 3)
    min_depth: float = 0.1
    max_depth: float = 100.0
    use_stereo: bool = False
    frame_ids: Tuple[FrameId, ...] = (0, -1, 1)
    batch_size: int = 12
    learning_rate: float = 1e-4
    num_epochs: int = 20
    scheduler_step_size: int = 15
    v1_multiscale: bool = False
    avg_reprojection: bool = False
    disable_automasking: bool = False
    predictive_mask: bool = False
    no_ssim: bool = False
    weights_init: str = "pretrained"
    pose_model_input: str = "pairs"
    pose_model_type: str = "separate_resnet"
    num_workers: int = 12
    load_weights_folder: str = ""
    models_to_load: Tuple[str, ...] = ("encoder", "depth", "pose_encoder", "pose")
    log_frequency: int = 250
    save_frequency: int = 1
    # ours
    seed: int = 0
    max_steps: int = 0
    save_steps: int = 0
    jit_compile: bool = False
    deterministic: bool = False
    mixed_precision: Optional[str] = None
    exact_loss: bool = False
    val_samples: int = 500
    gpu: str = ""
    # the GluonCV port's names (architecture presets; see monodepth_tf.weights.zoo)
    model_zoo: str = ""
    model_zoo_pose: str = ""
    # --dataset folder (see monodepth_tf.data.folder)
    frame_stride: int = 1
    target_fps: float = 0.0
    skip_static: float = 0.0

    @property
    def all_frame_ids(self) -> Tuple[FrameId, ...]:
        """frame_ids plus ``s`` when training with stereo."""
        ids = tuple(self.frame_ids)
        return ids + ("s",) if self.use_stereo and "s" not in ids else ids

    @property
    def run_dir(self) -> Path:
        return Path(self.log_dir).expanduser() / self.model_name

    def model_config(self) -> ModelConfig:
        """The architecture these options train."""
        return ModelConfig(height=self.height, width=self.width, num_layers=self.num_layers,
                           scales=self.scales, frame_ids=self.all_frame_ids,
                           use_stereo=self.use_stereo, pose_model_type=self.pose_model_type,
                           pose_model_input=self.pose_model_input,
                           predictive_mask=self.predictive_mask, min_depth=self.min_depth,
                           max_depth=self.max_depth)

    def loss_options(self) -> LossOptions:
        return LossOptions(frame_ids=self.all_frame_ids, scales=self.scales,
                           min_depth=self.min_depth, max_depth=self.max_depth,
                           disparity_smoothness=self.disparity_smoothness,
                           v1_multiscale=self.v1_multiscale,
                           avg_reprojection=self.avg_reprojection,
                           disable_automasking=self.disable_automasking,
                           predictive_mask=self.predictive_mask, no_ssim=self.no_ssim,
                           posecnn=self.pose_model_type == PoseModelType.POSECNN,
                           pose_model_input=self.pose_model_input, exact=self.exact_loss)

    def validate(self) -> "TrainOptions":
        """Raises OptionsError naming the flag when options contradict each other or a number
        is out of its range (see :data:`NUMBER_RANGES`)."""
        self._validate_numbers()
        if not self.model_name:
            raise OptionsError("--model_name is empty: it names the run folder under --log_dir")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value % 32:
                raise OptionsError(f"--{name}={value} must be a positive multiple of 32 "
                                   "(the encoder downsamples by 32)")
        try:
            keys = [frame_key(f) for f in self.frame_ids]
        except ValueError as error:
            raise OptionsError(f"--frame_ids: {error}") from None
        if not keys or keys[0] != "0" or len(set(keys)) != len(keys):
            raise OptionsError(f"--frame_ids={','.join(keys)} must start with 0 and name each "
                               "frame once")
        if "s" in keys[1:] and not self.use_stereo:
            raise OptionsError("--frame_ids names 's' but --use_stereo is off")
        if len(keys) == 1 and not self.use_stereo:
            raise OptionsError("--frame_ids=0 leaves no source frame: add temporal frames "
                               "(0,-1,1) or --use_stereo (stereo mode)")
        if self.predictive_mask and not self.disable_automasking:
            raise OptionsError("--predictive_mask requires --disable_automasking")
        if sorted(self.scales) != list(range(len(self.scales))) or len(self.scales) > 4:
            raise OptionsError(f"--scales must be 0, 0 1, 0 1 2 or 0 1 2 3; got {self.scales}")
        checks = (("num_layers", (18, 34, 50, 101, 152)), ("weights_init", ("pretrained",
                  "scratch")), ("pose_model_input", ("pairs", "all")),
                  ("pose_model_type", POSE_MODEL_TYPES),
                  ("dataset", ("kitti", "kitti_odom", "kitti_depth", "kitti_test", "folder")),
                  ("mixed_precision", (None, "float16", "bfloat16")))
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise OptionsError(f"--{name}={getattr(self, name)} is not one of {allowed}")
        unknown = [m for m in self.models_to_load if m not in MODELS_TO_LOAD]
        if unknown:
            raise OptionsError(f"--models_to_load names {','.join(unknown)}: choose among "
                               f"{','.join(MODELS_TO_LOAD)}")
        if self.gpu and not all(g.strip().isdigit() for g in self.gpu.split(",")):
            raise OptionsError(f"--gpu={self.gpu} must be GPU indices such as 0 or 0,1")
        self._validate_folder()
        if not self.min_depth < self.max_depth:
            raise OptionsError(f"--min_depth={self.min_depth} and --max_depth={self.max_depth} "
                               "must satisfy 0 < min_depth < max_depth")
        return self

    def _validate_numbers(self) -> None:
        """Every numeric option within :data:`NUMBER_RANGES` (and finite)."""
        for name, (low, strict, meaning) in NUMBER_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise OptionsError(f"--{name}={value} must be a finite number")
            if value < low or (strict and value == low):
                bound = f"greater than {low}" if strict else f"at least {low}"
                raise OptionsError(f"--{name}={value} must be {bound}{meaning}")
        if self.seed >= 2 ** 32:
            raise OptionsError(f"--seed={self.seed} must be below 2**32 (NumPy's seed range)")

    def _validate_folder(self) -> None:
        if self.target_fps and self.frame_stride != 1:
            raise OptionsError("give --frame_stride or --target_fps, not both")
        if self.dataset != "folder":
            if self.frame_stride != 1 or self.target_fps or self.skip_static:
                raise OptionsError("--frame_stride, --target_fps and --skip_static are for "
                                   "--dataset=folder")
        elif not self.data_path:
            raise OptionsError("--dataset=folder needs --data_path (a folder of frame folders "
                               "and/or videos)")


def define_training_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines every training flag (the original's names and defaults, then ours) in
    ``flag_values`` (absl's global flags by default)."""
    d = TrainOptions()
    define = _Definer(flag_values)
    define.enum("mode", None, list(MODES), "Preset: mono (frames 0 -1 1), stereo "
                "(frame 0 + the other camera, split eigen_full), mono_stereo (both).")
    define.string("data_path", d.data_path, "KITTI raw root; empty: train on a synthetic "
                  "world generated under the log directory.")
    log_dir_help = (f"Where runs are written: <log_dir>/<model_name> (default: "
                    f"{d.log_dir}). absl's logging also reads this flag.")
    if "log_dir" in flag_values:  # absl.logging defines it already: we share it
        flag_values["log_dir"].help = log_dir_help
    else:
        define.string("log_dir", "", log_dir_help)
    define.string("model_name", d.model_name, "Run folder name under --log_dir.")
    define.string("split", d.split, "Split folder under --split_dir.")
    define.string("split_dir", d.split_dir, "Folder of split folders (default: the "
                  "project's splits/).")
    define.integer("num_layers", d.num_layers, "ResNet depth: 18, 34, 50, 101, 152.")
    define.string("dataset", d.dataset, "kitti, kitti_odom, kitti_depth, kitti_test, or "
                  "folder (your own frame folders and videos with an intrinsics.json; see "
                  "monodepth_tf/data/folder/).")
    define.bool("png", d.png, "Images are .png (default .jpg).")
    define.integer("height", d.height, "Input height (multiple of 32).")
    define.integer("width", d.width, "Input width (multiple of 32).")
    define.float("disparity_smoothness", d.disparity_smoothness, "Smoothness weight.")
    define.list("scales", ["0", "1", "2", "3"], "Loss scales.")
    define.float("min_depth", d.min_depth, "Minimum depth.")
    define.float("max_depth", d.max_depth, "Maximum depth.")
    define.bool("use_stereo", d.use_stereo, "Use the other camera as a source frame.")
    define.list("frame_ids", ["0", "-1", "1"], "Frames per sample (0 first).")
    define.integer("batch_size", d.batch_size, "Global batch size.")
    define.float("learning_rate", d.learning_rate, "Adam learning rate.")
    define.integer("num_epochs", d.num_epochs, "Epochs.")
    define.integer("scheduler_step_size", d.scheduler_step_size,
                   "Epochs between learning-rate drops (x0.1).")
    for name, text in (("v1_multiscale", "Compute the loss at each scale's own resolution."),
                       ("avg_reprojection", "Average the reprojection errors instead of min."),
                       ("disable_automasking", "No auto-masking."),
                       ("predictive_mask", "Learn a mask (requires --disable_automasking)."),
                       ("no_ssim", "L1 photometric error only.")):
        define.bool(name, False, text)
    define.string("weights_init", d.weights_init, "pretrained (ImageNet) or scratch.")
    define.string("pose_model_input", d.pose_model_input, "pairs or all.")
    define.string("pose_model_type", d.pose_model_type, " or ".join(POSE_MODEL_TYPES) + ".")
    define.integer("num_workers", d.num_workers, "Kept for compatibility: tf.data "
                   "decodes in parallel (AUTOTUNE).")
    define.string("load_weights_folder", d.load_weights_folder, "Start from this weights "
                  "folder (ours or the original's .pth files), or from a released model "
                  "(e.g. mono_640x192, downloaded on first use).")
    define.list("models_to_load", list(d.models_to_load), "Parts to load.")
    define.integer("log_frequency", d.log_frequency, "Steps between log lines.")
    define.integer("save_frequency", d.save_frequency, "Epochs between weight folders.")
    define.integer("seed", d.seed, "Seed of initialization, shuffling and augmentation.")
    define.integer("max_steps", d.max_steps, "Stop after this many steps (0: no limit).")
    define.integer("save_steps", d.save_steps, "Also checkpoint every N steps (0: epochs "
                   "only).")
    define.bool("jit_compile", d.jit_compile, "Compile the step with XLA.")
    define.bool("deterministic", d.deterministic, "Bitwise reproducible training: the same "
                "--seed on the same machine (same threads) gives the same weights, and a "
                "resumed run the weights of an uninterrupted one. Turns TensorFlow's graph "
                "optimizer off and op determinism on (no slower on the CPU).")
    define.enum("mixed_precision", None, ["float16", "bfloat16"], "Mixed precision.")
    define.bool("exact_loss", d.exact_loss, "Compute the loss with the original's roundings "
                "(fused multiply-adds emulated in float64), so that sampling grids and "
                "auto-masks equal the original's bit for bit; slow on GPUs. Default: float32 "
                "throughout (see monodepth_tf.losses.LossOptions).")
    define.integer("val_samples", d.val_samples, "Val samples scored at each epoch's end, "
                   "spread over the val list (0: all).")
    define.string("gpu", d.gpu, "GPU indices to train on, e.g. 0 or 0,1 (default: every "
                  "visible GPU; the CPU when there is none).")
    define.string("model_zoo", d.model_zoo, "GluonCV-style depth model name, e.g. "
                  "monodepth2_resnet18_kitti_mono_640x192, or a release name (mono_640x192): "
                  "sets the mode, ResNet depth and feed size (explicit flags win).")
    define.string("model_zoo_pose", d.model_zoo_pose, "GluonCV-style pose model name, e.g. "
                  "monodepth2_resnet18_posenet_kitti_mono_640x192 (must match "
                  "--model_zoo's mode).")
    define.integer("frame_stride", d.frame_stride, "--dataset=folder: keep every N-th frame.")
    define.float("target_fps", d.target_fps, "--dataset=folder: keep about this many frames "
                 "per second (stride round(fps / target_fps); 0: off).")
    define.float("skip_static", d.skip_static, "--dataset=folder: drop frames whose mean "
                 "absolute difference (RGB in [0, 1]) to the last kept frame is below this "
                 "(0: off).")
    define.bool("pretrained_base", None, "GluonCV's name for --weights_init=pretrained "
                "(--nopretrained_base: scratch).")


class _Definer:
    """``define.string(...)`` = ``flags.DEFINE_string(..., flag_values=...)``, and so on."""

    def __init__(self, flag_values: flags.FlagValues):
        self.flag_values = flag_values

    def __getattr__(self, kind: str):
        definer = getattr(flags, f"DEFINE_{kind}")
        return lambda *args, **kwargs: definer(*args, flag_values=self.flag_values, **kwargs)


def from_flags(values=None) -> TrainOptions:
    """TrainOptions from parsed flags, the ``--mode`` preset applied first (explicit flags
    win), then validated."""
    values = values or flags.FLAGS
    names = {f.name for f in dataclasses.fields(TrainOptions)}
    chosen = {}
    mode, zoo_preset = values.mode, _zoo_presets(values)
    if zoo_preset:
        if mode and mode != zoo_preset["mode"]:
            raise OptionsError(f"--mode={mode} contradicts --model_zoo={values.model_zoo} "
                               f"(a {zoo_preset['mode']} model)")
        mode = zoo_preset.pop("mode")
    preset = dict(MODES.get(mode, {}) if mode else {}, **zoo_preset)
    if "pretrained_base" in values and values.pretrained_base is not None:
        if values["weights_init"].present:
            raise OptionsError("give --weights_init or --pretrained_base, not both")
        preset["weights_init"] = "pretrained" if values.pretrained_base else "scratch"
    for name in names:
        if name not in values:
            continue
        value = values[name].value
        if name in preset and not values[name].present:
            value = preset[name]
        chosen[name] = value
    try:
        chosen["scales"] = tuple(int(s) for s in chosen["scales"])
        chosen["frame_ids"] = tuple(f if f == "s" else int(f) for f in chosen["frame_ids"])
    except ValueError as error:
        raise OptionsError(f"--scales/--frame_ids must be integers (or s): {error}") from None
    chosen["models_to_load"] = tuple(chosen["models_to_load"])
    chosen["log_dir"] = chosen.get("log_dir") or TrainOptions.log_dir
    if mode in ("stereo", "mono_stereo") and not chosen["use_stereo"]:
        flag = f"--mode={mode}" if values.mode else f"--model_zoo={values.model_zoo}"
        raise OptionsError(f"{flag} needs stereo frames, but --use_stereo is off")
    return TrainOptions(**chosen).validate()


def _zoo_presets(values) -> dict:
    """What ``--model_zoo`` / ``--model_zoo_pose`` set: the mode (key ``mode``), ResNet depth
    and feed size of the named models."""
    depth_name = values.model_zoo if "model_zoo" in values else ""
    pose_name = values.model_zoo_pose if "model_zoo_pose" in values else ""
    if not depth_name and not pose_name:
        return {}
    if pose_name and not depth_name:
        raise OptionsError("--model_zoo_pose needs --model_zoo (the depth model it goes with)")
    try:
        depth = zoo.resolve(depth_name)
        pose = zoo.resolve(pose_name) if pose_name else None
    except ValueError as error:
        flag = "--model_zoo" if depth_name not in zoo.PRESETS else "--model_zoo_pose"
        raise OptionsError(f"{flag}: {error}") from None
    if depth.is_pose:
        raise OptionsError(f"--model_zoo={depth_name} is a pose network: pass it as "
                           "--model_zoo_pose, and a depth model as --model_zoo")
    if pose is not None and (not pose.is_pose or pose.mode != depth.mode):
        raise OptionsError(f"--model_zoo_pose={pose_name} does not go with "
                           f"--model_zoo={depth_name} (a {depth.mode} depth model)")
    preset = dict(mode=depth.mode, num_layers=depth.num_layers, height=depth.height,
                  width=depth.width)
    if pose is not None:
        preset["pose_model_type"] = "separate_resnet"
    return preset
