"""The architecture vocabulary shared by every layer of the package: the pose model types.

``PoseModelType`` is the one enumeration of the original's ``--pose_model_type`` values. Its
members are strings (``PoseModelType.POSECNN == "posecnn"``), so options, ``config.json`` and
Keras configs keep holding plain strings.
"""

import enum
from typing import Optional


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
