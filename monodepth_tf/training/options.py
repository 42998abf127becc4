"""Training options: the original's, with the same names and defaults, plus ours.

Flags are defined once (``define_training_flags``) and turned into one typed, validated
``TrainOptions`` (``from_flags``); contradictions are rejected before anything loads, naming
the flag at fault.
"""

import dataclasses
import os
from pathlib import Path
from typing import Optional, Tuple

from absl import flags

from monodepth_tf.config import POSE_MODEL_TYPES, ModelConfig, PoseModelType
from monodepth_tf.data.frames import FrameId, frame_key
from monodepth_tf.losses.options import LossOptions
from monodepth_tf.weights import zoo

MODES = {
    "mono": dict(frame_ids=("0", "-1", "1"), use_stereo=False),
    "stereo": dict(frame_ids=("0",), use_stereo=True, split="eigen_full"),
    "mono_stereo": dict(frame_ids=("0", "-1", "1"), use_stereo=True),
}
SPLITS = ("eigen_zhou", "eigen_full", "odom", "benchmark")


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
        """Raises OptionsError naming the flag when options contradict each other."""
        for name in ("height", "width"):
            value = getattr(self, name)
            if value <= 0 or value % 32:
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
        if self.batch_size < 1:
            raise OptionsError(f"--batch_size={self.batch_size} must be at least 1")
        if self.val_samples < 0:
            raise OptionsError(f"--val_samples={self.val_samples} must be 0 (all) or more")
        if self.gpu and not all(g.strip().isdigit() for g in self.gpu.split(",")):
            raise OptionsError(f"--gpu={self.gpu} must be GPU indices such as 0 or 0,1")
        self._validate_folder()
        if not 0 < self.min_depth < self.max_depth:
            raise OptionsError(f"--min_depth={self.min_depth} and --max_depth={self.max_depth} "
                               "must satisfy 0 < min_depth < max_depth")
        return self

    def _validate_folder(self) -> None:
        if self.frame_stride < 1:
            raise OptionsError(f"--frame_stride={self.frame_stride} must be at least 1")
        if self.target_fps < 0 or self.skip_static < 0:
            raise OptionsError("--target_fps and --skip_static must be 0 (off) or positive")
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
