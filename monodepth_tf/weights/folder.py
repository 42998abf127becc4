"""The weights folder: what training writes and prediction, evaluation and export load.

A folder holds ``config.json`` (architecture and feed size) and one Keras weights file per
network: ``encoder.weights.h5``, ``depth.weights.h5`` and, when there is a pose network,
``pose_encoder.weights.h5`` and ``pose.weights.h5`` (``pose`` alone for PoseCNN). A folder of the
original's PyTorch files (``encoder.pth``, ``depth.pth``, ...) loads too: it is converted on the
fly, its architecture read from the checkpoints themselves.

Folders are written atomically: into a temporary sibling first, then renamed into place, so an
interruption never leaves a half-written folder under the final name.
"""

import errno
import math
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from monodepth_tf.config import (SEPARATE_POSE_MODEL_TYPES, ConfigError, ModelConfig,
                                 PoseModelType)
from monodepth_tf.files import WriteError, check_free_space, first_line
from monodepth_tf.networks.depth_net import DepthNet
from monodepth_tf.networks.layers import build
from monodepth_tf.networks.pose_net import PoseNet
from monodepth_tf.weights.torch_checkpoint import load_state_dict, unwrap_state_dict
from monodepth_tf.weights.torch_import import assign_state_dict

CONFIG_FILE = "config.json"
MODEL_NAMES = ("encoder", "depth", "pose_encoder", "pose")


class WeightsFolderError(ValueError):
    """A weights folder is missing, incomplete, or does not fit the requested networks."""


class NonFiniteWeightsError(ValueError):
    """Variables holding NaN or infinity, which are never written (weights folders,
    checkpoints)."""


def require_finite(variables: Iterable, what: str) -> None:
    """Raises NonFiniteWeightsError naming the variables (Keras or TensorFlow, trainable or not)
    that hold a NaN or an infinity; ``what`` says what was about to be written."""
    bad = [getattr(v, "path", None) or v.name for v in variables if not _all_finite(v)]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise NonFiniteWeightsError(f"refusing to write {what}: {len(bad)} variable(s) hold NaN "
                                    f"or infinity ({shown})")


def _all_finite(variable) -> bool:
    """Whether a float variable holds no NaN or infinity (computed where it lives; integer
    variables, such as Adam's step, always are)."""
    if not tf.as_dtype(variable.dtype).is_floating:
        return True
    return bool(tf.reduce_all(tf.math.is_finite(variable)))


def build_networks(config: ModelConfig, with_pose: bool = True, with_depth: bool = True):
    """Built (variables created) DepthNet and PoseNet for a config, each None when not asked for
    (or, for the pose network, when the config has none)."""
    depth = build(DepthNet(config.num_layers, config.scales), 3) if with_depth else None
    pose = None
    if with_pose and config.pose_model_type in SEPARATE_POSE_MODEL_TYPES:
        pose = build(PoseNet(config.num_layers, config.num_pose_frames, config.pose_model_type),
                     3 * config.num_pose_frames)
    return depth, pose


def named_parts(depth: Optional[DepthNet], pose: Optional[PoseNet]) -> Dict[str, keras.Model]:
    """``{file name: network}`` of the parts that exist, as the original names its files."""
    parts = {}
    if depth is not None:
        parts.update(encoder=depth.encoder, depth=depth.decoder)
    if pose is not None:
        if pose.pose_model_type == PoseModelType.POSECNN:
            parts["pose"] = pose.cnn
        else:
            parts.update(pose_encoder=pose.encoder, pose=pose.decoder)
    return parts


def save_weights_folder(folder, config: ModelConfig, depth: DepthNet,
                        pose: Optional[PoseNet] = None, extra: Optional[Dict] = None) -> Path:
    """Writes a complete weights folder atomically (a temporary sibling renamed into place).

    Raises:
        NonFiniteWeightsError: a variable of the networks (BatchNorm statistics included)
            holds NaN or infinity; nothing is written.
        DiskSpaceError: the disk lacks room for it (checked first: nothing is written).
        WriteError: the write failed (named); ``folder`` is left as it was.
    """
    folder = Path(folder)
    parts = named_parts(depth, pose)
    variables = [v for network in parts.values() for v in network.variables]
    require_finite(variables, f"weights folder {folder}")
    check_free_space(folder.parent, variable_bytes(variables), f"weights folder {folder}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    for leftover in folder.parent.glob(f".{folder.name}.*"):  # of a write that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, network in parts.items():
            try:
                network.save_weights(str(staging / f"{name}.weights.h5"))
            except OSError as error:
                raise WriteError(f"writing weights folder {folder} failed ({first_line(error)}); "
                                 f"{folder} is left as it was", error.errno or errno.EIO) \
                    from None
        (staging / CONFIG_FILE).write_text(config.to_json(extra))
        # mkdtemp makes the folder private (0700); give it the usual permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)
        replace_dir(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def variable_bytes(variables: Iterable) -> int:
    """The bytes that Keras or TensorFlow variables hold (what saving them writes)."""
    return sum(math.prod(tuple(v.shape)) * tf.as_dtype(v.dtype).size for v in variables)


def replace_dir(new: Path, target: Path) -> None:
    """Puts the complete directory ``new`` in place as ``target``, swapped in atomically.

    Each step is an ``os.replace``, a rename, so ``new`` must be on ``target``'s filesystem (a
    sibling such as ``tempfile.mkdtemp(dir=target.parent)``); a reader of ``target``
    never sees a partly written directory: only the old one, briefly none (between the two
    renames when ``target`` exists), or the whole new one. An existing ``target`` is first
    renamed to ``.<name>.old`` beside it, then removed once ``new`` is in place.
    """
    if target.exists():
        retired = target.with_name(f".{target.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(target, retired)
        os.replace(new, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(new, target)


def is_pytorch_folder(folder) -> bool:
    return (Path(folder) / "encoder.pth").is_file() and not (Path(folder) / CONFIG_FILE).is_file()


def read_config(folder) -> ModelConfig:
    """The network config of a weights folder (ours or the original's)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsFolderError(f"weights folder {folder} does not exist")
    if (folder / CONFIG_FILE).is_file():
        try:
            return ModelConfig.from_json(folder / CONFIG_FILE)
        except ConfigError as error:
            raise WeightsFolderError(str(error)) from None
    if (folder / "encoder.pth").is_file():
        return config_from_pytorch_folder(folder)
    raise WeightsFolderError(f"{folder} is not a weights folder: it has neither {CONFIG_FILE} "
                             "nor the original's encoder.pth")


def _block_count(state, prefix: str, stage: int) -> int:
    pattern = re.compile(rf"^{re.escape(prefix)}layer{stage}\.(\d+)\.")
    return 1 + max((int(m.group(1)) for k in state if (m := pattern.match(k))), default=-1)


def infer_resnet_depth(state, prefix: str = "encoder.") -> int:
    """ResNet depth (18/34/50/101/152) from a state dict's block counts and block type."""
    counts = tuple(_block_count(state, prefix, s) for s in (1, 2, 3, 4))
    bottleneck = f"{prefix}layer1.0.conv3.weight" in state
    table = {((2, 2, 2, 2), False): 18, ((3, 4, 6, 3), False): 34, ((3, 4, 6, 3), True): 50,
             ((3, 4, 23, 3), True): 101, ((3, 8, 36, 3), True): 152}
    if (counts, bottleneck) not in table:
        raise WeightsFolderError(f"not a torchvision ResNet layout: blocks per stage {counts}")
    return table[(counts, bottleneck)]


def config_from_pytorch_folder(folder) -> ModelConfig:
    """Reads the architecture of the original's checkpoints (and the feed size it stores)."""
    folder = Path(folder)
    encoder = unwrap_state_dict(load_state_dict(folder / "encoder.pth"))
    config = ModelConfig(num_layers=infer_resnet_depth(encoder))
    config.height = int(encoder.get("height", config.height))
    config.width = int(encoder.get("width", config.width))
    config.use_stereo = bool(encoder.get("use_stereo", False))
    depth = unwrap_state_dict(load_state_dict(folder / "depth.pth"))
    heads = sum(1 for k in depth if re.match(r"^decoder\.(\d+)\.conv\.weight$", k))
    config.scales = tuple(range(heads))
    if (folder / "pose_encoder.pth").is_file():
        pose_encoder = unwrap_state_dict(load_state_dict(folder / "pose_encoder.pth"))
        config.num_pose_frames = int(pose_encoder["encoder.conv1.weight"].shape[1]) // 3
        config.pose_model_type = PoseModelType.SEPARATE_RESNET.value
    elif (folder / "pose.pth").is_file():
        pose = unwrap_state_dict(load_state_dict(folder / "pose.pth"))
        config.pose_model_type = PoseModelType.POSECNN.value
        config.num_pose_frames = int(pose["net.0.weight"].shape[1]) // 3
    else:
        config.pose_model_type = None
    return config


def load_weights_folder(folder, depth: Optional[DepthNet] = None, pose: Optional[PoseNet] = None,
                        models_to_load: Sequence[str] = MODEL_NAMES) -> ModelConfig:
    """Loads the named parts of a weights folder into built networks.

    Args:
        folder: our weights folder or the original's folder of ``.pth`` files.
        depth, pose: built networks to load into (either may be None).
        models_to_load: which of ``encoder``, ``depth``, ``pose_encoder``, ``pose`` to load.

    Raises:
        WeightsFolderError: the folder or a requested file is missing, or does not fit.
    """
    folder = Path(folder)
    config = read_config(folder)
    parts = named_parts(depth, pose)
    unknown = [m for m in models_to_load if m not in MODEL_NAMES]
    if unknown:
        raise WeightsFolderError(f"models_to_load names {unknown}: choose among {MODEL_NAMES}")
    check_architecture(folder, config, depth, pose, models_to_load)
    pytorch = is_pytorch_folder(folder)
    for name in models_to_load:
        if name not in parts:
            continue
        path = folder / (f"{name}.pth" if pytorch else f"{name}.weights.h5")
        if not path.is_file():
            raise WeightsFolderError(f"{path} is missing (models_to_load asks for {name!r})")
        if pytorch:
            assign_state_dict(parts[name], unwrap_state_dict(load_state_dict(path)),
                              source=str(path))
        else:
            load_keras_weights(parts[name], path, name)
    return config


def check_architecture(folder: Path, config: ModelConfig, depth: Optional[DepthNet],
                       pose: Optional[PoseNet], models_to_load: Sequence[str]) -> None:
    """Refuses a folder whose networks are not the ones built, naming the setting that differs,
    before any weight is read (Keras' own report of a mismatch is pages of variable dumps).

    Args:
        folder: the weights folder; config: what it holds (its ``config.json``).
        depth, pose: the networks to load into (either may be None).
        models_to_load: the parts asked for (``encoder``, ``depth``, ``pose_encoder``, ``pose``).

    Raises:
        WeightsFolderError: the depth encoder, the pose network's type, frame count or depth
            differ.
    """
    wanted = set(models_to_load)
    differences = []
    if depth is not None and wanted & {"encoder", "depth"} and \
            depth.num_layers != config.num_layers:
        differences.append(f"a ResNet-{config.num_layers} depth encoder (num_layers "
                           f"{config.num_layers}), the network built has num_layers "
                           f"{depth.num_layers}")
    if pose is not None and wanted & {"pose_encoder", "pose"} and \
            config.pose_model_type is not None:
        folder_type = PoseModelType(config.pose_model_type).value
        if pose.pose_model_type != folder_type:
            differences.append(f"a {folder_type} pose network, the one built is "
                               f"{pose.pose_model_type}")
        elif pose.num_input_frames != config.num_pose_frames:
            differences.append(f"a pose network of {config.num_pose_frames} input frames, "
                               f"the one built takes {pose.num_input_frames}")
        elif folder_type == PoseModelType.SEPARATE_RESNET.value and \
                pose.num_layers != config.num_layers:
            differences.append(f"a ResNet-{config.num_layers} pose encoder, the network built "
                               f"has num_layers {pose.num_layers}")
    if differences:
        raise WeightsFolderError(f"weights folder {folder} holds {'; '.join(differences)}: "
                                 f"build the networks its {CONFIG_FILE} describes (e.g. "
                                 f"--num_layers {config.num_layers}) or choose another folder")


def load_keras_weights(network: keras.Model, path: Path, name: str) -> None:
    """Reads one ``.weights.h5`` file into a built network, every variable or none.

    Raises:
        WeightsFolderError: naming the file, when it is not a readable HDF5 weights file
            (damaged, truncated), does not fit the network, or Keras skipped part of it (it
            only warns, and would leave those layers with their initial weights).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            network.load_weights(str(path))
        except OSError as error:
            raise WeightsFolderError(f"{path} is not a readable weights file ({first_line(error)})"
                                     ": the file is damaged or incomplete; write or download "
                                     "the folder again") from None
        except ValueError as error:
            raise WeightsFolderError(f"{path} does not fit the {name} network: "
                                     f"{first_line(error)}") from None
    skipped = [w for w in caught if issubclass(w.category, UserWarning)
               and {"keras", "saving"} <= set(Path(w.filename).parts)]
    for warning in caught:
        if warning not in skipped:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    if skipped:
        raise WeightsFolderError(f"{path} does not hold all of the {name} network's weights "
                                 f"(Keras: {first_line(skipped[0].message)})")


def convert_pytorch_folder(pytorch_dir, output_dir,
                           extra: Optional[Dict] = None) -> Tuple[ModelConfig, Tuple[str, ...]]:
    """Converts the original's checkpoints (``encoder.pth``, ``depth.pth`` and, when present,
    ``pose_encoder.pth`` + ``pose.pth`` or a PoseCNN's ``pose.pth``) into a weights folder,
    written atomically; the architecture and feed size come from the files.

    Args:
        pytorch_dir: the folder of ``.pth`` files.
        output_dir: the weights folder to write (replaced when it exists).
        extra: more entries for its ``config.json``.

    Returns:
        ``(config, names of the networks converted)``.

    Raises:
        WeightsFolderError, WeightImportError: a file is missing or does not fit (named).
    """
    config = config_from_pytorch_folder(pytorch_dir)
    depth, pose = build_networks(config)
    parts = tuple(n for n in MODEL_NAMES if n in named_parts(depth, pose))
    load_weights_folder(pytorch_dir, depth, pose, parts)
    save_weights_folder(output_dir, config, depth, pose, extra=extra)
    return config, parts


def load_networks(folder, with_pose: bool = True, with_depth: bool = True,
                  check_config: Optional[Callable[[ModelConfig, Path], None]] = None):
    """Builds the networks a weights folder describes and loads them: ``(config, depth, pose)``.

    Args:
        folder: the weights folder (ours or the original's ``.pth`` files).
        with_pose: also the pose network, when the folder has one (else pose is None).
        with_depth: also the depth network; without it only the pose network is built and read,
            and a folder without one is an error.
        check_config: ``check_config(config, folder)`` raises when the folder's architecture does
            not suit the caller; called before anything is built or read.

    Raises:
        WeightsFolderError: the folder or a file is missing or does not fit (named).
    """
    folder = Path(folder)
    config = read_config(folder)
    if with_pose and not with_depth and config.pose_model_type is None:
        raise WeightsFolderError(f"weights folder {folder} has no pose network (no pose_encoder "
                                 "and pose weights)")
    if check_config is not None:
        check_config(config, folder)
    depth, pose = build_networks(config, with_pose, with_depth)
    names = [n for n in MODEL_NAMES if n in named_parts(depth, pose)]
    load_weights_folder(folder, depth, pose, names)
    return config, depth, pose
