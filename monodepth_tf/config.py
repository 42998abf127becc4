"""The architecture of a Monodepth2 configuration: ``ModelConfig`` and the pose model types.

``ModelConfig`` is the one description of an architecture: what builds the networks for
training (:class:`monodepth_tf.model.Monodepth2`) and what a weights folder's ``config.json``
holds (:mod:`monodepth_tf.weights.folder`). ``PoseModelType`` is the one enumeration of the
original's ``--pose_model_type`` values; its members are strings
(``PoseModelType.POSECNN == "posecnn"``), so options, ``config.json`` and Keras configs keep
holding plain strings. TensorFlow-free.
"""

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from monodepth_tf.data.frames import STEREO, FrameId, frame_key


class PoseModelType(str, enum.Enum):
    """How the pose between two frames is predicted.

    ``separate_resnet``: a ResNet pose encoder and a pose decoder of their own; ``posecnn``: the
    original's small PoseCNN; ``shared``: a pose decoder on the depth encoder's features.
    """

    SEPARATE_RESNET = "separate_resnet"
    POSECNN = "posecnn"
    SHARED = "shared"

    def __str__(self) -> str:
        return self.value

    @property
    def has_pose_network(self) -> bool:
        """Whether the type has a pose network of its own (a :class:`PoseNet`)."""
        return self is not PoseModelType.SHARED


POSE_MODEL_TYPES = tuple(t.value for t in PoseModelType)
SEPARATE_POSE_MODEL_TYPES = tuple(t.value for t in PoseModelType if t.has_pose_network)


def pose_model_type(value: Optional[str], what: str = "--pose_model_type") -> PoseModelType:
    """``value`` as a :class:`PoseModelType`, or a ValueError naming ``what`` and the choices."""
    try:
        return PoseModelType(value)
    except ValueError:
        raise ValueError(f"{what} must be {', '.join(POSE_MODEL_TYPES[:-1])} or "
                         f"{POSE_MODEL_TYPES[-1]}, got {value!r}") from None


class ConfigError(ValueError):
    """A ``config.json`` that cannot be read (the message names the file)."""


# What config.json holds (the weights folder's view of the architecture; the training-only
# fields are in the run's opt.json). Unknown keys in a file are ignored, missing ones default.
JSON_FIELDS = ("height", "width", "num_layers", "scales", "use_stereo", "pose_model_type",
               "num_pose_frames", "min_depth", "max_depth")


@dataclasses.dataclass
class ModelConfig:
    """One Monodepth2 architecture and the feed it is trained at (the original's option
    names and defaults).

    Attributes:
        height, width: the network input size (prediction resizes inputs to it).
        num_layers: ResNet depth of the encoders.
        scales: the depth decoder's output scales.
        frame_ids: the frames of a training sample (0 first; ``"s"``: the stereo frame).
        use_stereo: trained with the stereo frame.
        pose_model_type: a :class:`PoseModelType` value; None for a weights folder without a
            pose network.
        pose_model_input: ``pairs`` (the pose of each source frame from it and frame 0) or
            ``all`` (every frame at once).
        num_pose_frames: frames the pose network takes; by default 2 for ``pairs``, else
            1 + the number of temporal sources.
        predictive_mask: a predictive-mask decoder is trained too.
        min_depth, max_depth: the depth range the sigmoid disparity maps to.
    """

    height: int = 192
    width: int = 640
    num_layers: int = 18
    scales: Tuple[int, ...] = (0, 1, 2, 3)
    frame_ids: Tuple[FrameId, ...] = (0, -1, 1)
    use_stereo: bool = False
    pose_model_type: Optional[str] = PoseModelType.SEPARATE_RESNET.value
    pose_model_input: str = "pairs"
    num_pose_frames: Optional[int] = None
    predictive_mask: bool = False
    min_depth: float = 0.1
    max_depth: float = 100.0

    def __post_init__(self):
        self.scales = tuple(self.scales)
        self.frame_ids = tuple(self.frame_ids)
        if self.num_pose_frames is None:
            self.num_pose_frames = 2 if self.pose_model_input == "pairs" else \
                1 + len(self.temporal_keys)

    @property
    def temporal_keys(self) -> Tuple[str, ...]:
        """Keys of the temporal source frames (every source but the stereo one)."""
        return tuple(frame_key(f) for f in self.frame_ids[1:] if frame_key(f) != STEREO)

    @property
    def uses_pose_net(self) -> bool:
        """Stereo-only training (frame ids 0 and s) needs no pose network."""
        return bool(self.temporal_keys)

    def to_json(self, extra: Optional[Dict[str, Any]] = None) -> str:
        """The ``config.json`` text: :data:`JSON_FIELDS`, then ``extra`` (epoch, step, ...)."""
        payload = {name: getattr(self, name) for name in JSON_FIELDS}
        payload["scales"] = list(self.scales)
        payload.update(extra or {})
        return json.dumps(payload, indent=2) + "\n"

    @classmethod
    def from_json(cls, path: Union[str, Path]) -> "ModelConfig":
        """Reads a ``config.json`` (ours; also those written before this class existed)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"{path}: cannot read the network config ({error})") from None
        return cls(**{k: v for k, v in data.items() if k in JSON_FIELDS})

