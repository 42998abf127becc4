"""Model-zoo names: the GluonCV Monodepth2 tutorial's model names, resolved to presets.

    >>> from monodepth_tf import zoo
    >>> zoo.resolve("monodepth2_resnet18_kitti_stereo_640x192").use_stereo
    True

No hosted weights exist yet: each name's weights are read from a local folder,
``$MONODEPTH_ZOO_DIR/<name>/`` when that variable is set, else
``~/.keras/monodepth_tf/zoo/<name>/``. The folder is an ordinary weights folder (``config.json``
+ ``*.weights.h5`` as ``bin/train`` and ``bin/convert_weights`` write them) or the original
release's folder of ``.pth`` files (e.g. its ``mono_640x192`` download, for the depth names; a
pose name needs ``pose_encoder`` and ``pose`` files beside ``encoder`` and ``depth``).
"""

import dataclasses
import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from monodepth_tf.weights.folder import CONFIG_FILE, WeightsFolderError

ZOO_DIR_VARIABLE = "MONODEPTH_ZOO_DIR"
DEFAULT_ZOO_DIR = Path("~/.keras/monodepth_tf/zoo")
MODES = ("mono", "stereo", "mono_stereo")


class UnknownModelError(ValueError):
    """A model-zoo name that is not one of :func:`names`."""


class ZooWeightsMissing(WeightsFolderError):
    """A model-zoo name's local weights folder is absent or holds no weights."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """What a model-zoo name stands for.

    Attributes:
        name: the zoo name.
        mode: training mode, as ``bin/train --mode``: ``mono``, ``stereo`` or ``mono_stereo``.
        num_layers: ResNet depth of the encoder(s).
        height, width: the feed size.
        frame_ids: temporal frames used in training (``(0,)`` for stereo-only).
        use_stereo: trained with the stereo pair (depth is metric after x5.4).
        is_pose: the name stands for the pose network (its folder needs pose weights).
        original_name: the original release's name of the same model (its download folder).
    """

    name: str
    mode: str
    num_layers: int = 18
    height: int = 192
    width: int = 640
    frame_ids: Tuple[int, ...] = (0, -1, 1)
    use_stereo: bool = False
    is_pose: bool = False
    original_name: str = ""


def _presets() -> Dict[str, Preset]:
    table = {}
    for mode in MODES:
        use_stereo = mode != "mono"
        frame_ids = (0,) if mode == "stereo" else (0, -1, 1)
        original = {"mono": "mono", "stereo": "stereo", "mono_stereo": "mono+stereo"}[mode]
        kinds = (False, True) if mode != "stereo" else (False,)  # stereo-only has no pose net
        for is_pose in kinds:
            name = f"monodepth2_resnet18_{'posenet_' if is_pose else ''}kitti_{mode}_640x192"
            table[name] = Preset(name, mode, frame_ids=frame_ids, use_stereo=use_stereo,
                                 is_pose=is_pose, original_name=f"{original}_640x192")
    return table


PRESETS: Dict[str, Preset] = _presets()


def names() -> Tuple[str, ...]:
    """Every known zoo name, sorted."""
    return tuple(sorted(PRESETS))


def resolve(name: Union[str, Preset]) -> Preset:
    """The preset of a zoo name.

    Raises:
        UnknownModelError: the name is unknown (the message lists the known ones).
    """
    if isinstance(name, Preset):
        return name
    if name not in PRESETS:
        raise UnknownModelError(f"unknown model-zoo name {name!r}; known names: "
                                f"{', '.join(names())}")
    return PRESETS[name]


def zoo_dir() -> Path:
    """Where zoo weights folders live: ``$MONODEPTH_ZOO_DIR`` or ``~/.keras/monodepth_tf/zoo``."""
    return Path(os.environ.get(ZOO_DIR_VARIABLE) or DEFAULT_ZOO_DIR).expanduser()


def _holds_weights(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() or any(folder.glob("*.pth"))


def weights_folder(name: Union[str, Preset]) -> Path:
    """The local weights folder of a zoo name, checked to exist and to hold weights.

    Raises:
        UnknownModelError: the name is unknown.
        ZooWeightsMissing: the folder is absent or empty; the message names it and says what
            to put there.
    """
    preset = resolve(name)
    folder = zoo_dir() / preset.name
    if folder.is_dir() and _holds_weights(folder):
        return folder
    files = "encoder, depth" + (", pose_encoder, pose" if preset.is_pose else "")
    state = "does not exist" if not folder.exists() else "holds no weights"
    raise ZooWeightsMissing(
        f"weights folder {folder} of model {preset.name!r} {state}: no hosted weights exist "
        f"yet, so put the weights there yourself -- a weights folder written by bin/train or "
        f"bin/convert_weights (config.json + {files} .weights.h5 files), or the original "
        f"release's {preset.original_name} .pth files ({files}) -- or point "
        f"${ZOO_DIR_VARIABLE} at a folder holding {preset.name}/")


def load(name: Union[str, Preset], with_pose: Optional[bool] = None):
    """Loads a zoo model's networks: ``(NetworkConfig, DepthNet, PoseNet or None)``.

    Args:
        name: a zoo name.
        with_pose: also load the pose network (default: for pose names only).

    Raises:
        UnknownModelError, ZooWeightsMissing; WeightsFolderError when the folder's networks
        are not the preset's architecture (ResNet depth) or lack the pose network.
    """
    from monodepth_tf.weights.folder import load_networks, read_config

    preset = resolve(name)
    folder = weights_folder(preset)
    config = read_config(folder)
    if config.num_layers != preset.num_layers:
        raise WeightsFolderError(f"weights folder {folder} holds a ResNet-{config.num_layers}, "
                                 f"but {preset.name} is a ResNet-{preset.num_layers}")
    if with_pose is None:
        with_pose = preset.is_pose
    if with_pose and config.pose_model_type is None:
        raise WeightsFolderError(f"weights folder {folder} has no pose network, which "
                                 f"{preset.name} needs")
    return load_networks(folder, with_pose=with_pose)
