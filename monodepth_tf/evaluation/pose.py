"""The KITTI odometry pose evaluation: ATE over 5-frame snippets, as the original runs it.

Conventions (all 4x4 homogeneous matrices, float64 unless said otherwise):

- ``G[t]``: the ground truth of frame ``t``, camera-to-world (the odometry release's
  ``poses/<NN>.txt``, one 3x4 row-major matrix a line).
- ``T[t]``: the *frame-to-frame transform* of the pair ``(t, t + 1)``: it maps a point's
  coordinates in camera ``t`` to its coordinates in camera ``t + 1``, ``T[t] = inv(G[t + 1])
  G[t]``. It is what the pose network predicts when fed ``[frame t, frame t + 1]`` (the earlier
  frame first) and its output is turned into a matrix without inversion, as training does for
  source frame +1 (:func:`monodepth_tf.losses.reprojection.source_transform` warps frame +1
  into frame 0 with exactly this matrix).

Per sequence of ``N`` frames there are ``N - 1`` transforms and ``N - L + 1`` snippets of
``L = 5`` frames (``include_short`` adds the original's last ``L - 2`` shorter ones). The two
protocols:

- ``original`` (the original's evaluation, which produced the published numbers): the snippet's
  transforms are accumulated from the identity, ``X[0] = I``, ``X[k] = X[k - 1] T[i + k - 1]``,
  for the prediction and for the ground truth alike; the positions are the ``X[k]``'s
  translation columns.
- ``relative``: the snippet's camera poses in its first camera, ``inv(G[i]) G[i + k]``, against
  the prediction's inverted transforms accumulated the same way, ``inv(T[i]) inv(T[i + 1])
  ...`` (equal to ``inv(G[i]) G[i + k]`` when the transforms are exact). The two protocols give
  the same error whenever the motion has no rotation.

The error of a snippet (:func:`compute_ate`): the predicted positions are shifted so that the
first ones coincide, scaled by the least-squares factor ``sum(gt . pred) / sum(pred^2)``, and
``sqrt(sum of squared position errors) / number of frames``; the sequence's result is the mean
and the (population) standard deviation over snippets.
"""

from pathlib import Path
from typing import Iterable, Iterator, List, NamedTuple, Optional, Sequence, Union

import numpy as np

from monodepth_tf.config import PoseModelType
from monodepth_tf.data.images import load_rgb

SNIPPET_LENGTH = 5
PROTOCOLS = ("original", "relative")
DEFAULT_SEQUENCES = (9, 10)


class PoseEvaluationError(ValueError):
    """Pose-evaluation inputs that are missing or do not fit together (the message names them)."""


class PoseEvaluation(NamedTuple):
    """The result on one sequence.

    Attributes:
        ates: ``[S]`` the error of each snippet, in snippet order (snippet ``i`` starts at
            frame ``i``).
        mean, std: their mean and population standard deviation (what the original prints).
        num_frames: frames of the sequence.
    """

    ates: np.ndarray
    mean: float
    std: float
    num_frames: int

    @property
    def num_snippets(self) -> int:
        return len(self.ates)


def read_poses_file(path: Union[str, Path]) -> np.ndarray:
    """Reads an odometry poses file (12 numbers a line: a 3x4 camera-to-world matrix, row-major).

    Returns:
        ``[N, 4, 4]`` float64 camera-to-world poses (last row ``0 0 0 1``).

    Raises:
        PoseEvaluationError: the file is missing or unreadable, a line (named as
            ``<file>:<line number>``) does not hold 12 numbers, or the file lists no pose.
    """
    path = Path(path)
    if not path.is_file():
        raise PoseEvaluationError(f"poses file {path} does not exist")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise PoseEvaluationError(f"poses file {path} is unreadable ({error})") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            values = []
        if len(values) != 12 or not np.all(np.isfinite(values)):
            raise PoseEvaluationError(f"{path}:{number}: expected 12 finite numbers (a 3x4 "
                                      f"camera-to-world matrix), got {line.strip()[:80]!r}")
        rows.append(values)
    if not rows:
        raise PoseEvaluationError(f"poses file {path} lists no pose")
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3, :] = np.asarray(rows, np.float64).reshape(-1, 3, 4)
    return poses


def frame_to_frame_transforms(poses: np.ndarray) -> np.ndarray:
    """Ground-truth transforms of consecutive pairs, what the pose network predicts.

    Args:
        poses: ``[N, 4, 4]`` camera-to-world poses ``G``.

    Returns:
        ``[N - 1, 4, 4]``: ``T[t] = inv(G[t + 1]) G[t]``, camera ``t`` coordinates to camera
        ``t + 1`` coordinates.
    """
    poses = np.asarray(poses, np.float64)
    return np.linalg.inv(poses[1:]) @ poses[:-1]


def accumulate(transforms: np.ndarray) -> np.ndarray:
    """``[n, 4, 4]`` -> ``[n + 1, 4, 4]``: the identity, then each running product
    ``X[k] = X[k - 1] transforms[k - 1]`` (multiplied on the right)."""
    out = [np.eye(4)]
    for transform in np.asarray(transforms, np.float64):
        out.append(out[-1] @ transform)
    return np.stack(out)


def relative_poses(poses: np.ndarray, start: int, count: int) -> np.ndarray:
    """``[count, 4, 4]``: frames ``start .. start + count - 1`` in the camera of frame ``start``,
    ``inv(G[start]) G[start + k]``."""
    poses = np.asarray(poses, np.float64)
    return np.linalg.inv(poses[start]) @ poses[start:start + count]


def compute_ate(gt_xyz: np.ndarray, pred_xyz: np.ndarray) -> float:
    """The absolute trajectory error of one snippet after aligning the first positions and
    fitting one scale.

    Args:
        gt_xyz, pred_xyz: ``[n, 3]`` positions of the snippet's frames.

    Returns:
        ``sqrt(sum |s p'_k - g_k|^2) / n`` with ``p' = p - p_0 + g_0`` and the least-squares
        ``s = sum(g . p') / sum(p'^2)``.
    """
    gt_xyz = np.asarray(gt_xyz, np.float64)
    pred_xyz = np.asarray(pred_xyz, np.float64)
    if gt_xyz.shape != pred_xyz.shape or gt_xyz.ndim != 2 or gt_xyz.shape[1] != 3:
        raise PoseEvaluationError(f"positions must both be [n, 3], got {list(gt_xyz.shape)} and "
                                  f"{list(pred_xyz.shape)}")
    aligned = pred_xyz + (gt_xyz[0] - pred_xyz[0])
    scale = np.sum(gt_xyz * aligned) / np.sum(aligned ** 2)
    return float(np.sqrt(np.sum((aligned * scale - gt_xyz) ** 2)) / len(gt_xyz))


def snippet_frames(num_frames: int, length: int = SNIPPET_LENGTH,
                   include_short: bool = False) -> List[int]:
    """How many frames each snippet has, snippet ``i`` starting at frame ``i``: ``length`` for
    the ``num_frames - length + 1`` full ones, then (``include_short``, as the original's loop
    does) ``length - 1`` down to 2 for the snippets that run into the sequence's end."""
    full = [length] * max(0, num_frames - length + 1)
    if not include_short:
        return full
    return full + [num_frames - i for i in range(len(full), num_frames - 1)]


def snippet_positions(pred_transforms: np.ndarray, gt_poses: np.ndarray, start: int, count: int,
                      protocol: str = "original"):
    """Predicted and ground-truth positions ``[count, 3]`` of the snippet of ``count`` frames
    starting at frame ``start`` (see the module docstring for the protocols)."""
    pred = np.asarray(pred_transforms, np.float64)[start:start + count - 1]
    if protocol == "original":
        gt = frame_to_frame_transforms(gt_poses[start:start + count])
        return accumulate(pred)[:, :3, 3], accumulate(gt)[:, :3, 3]
    if protocol == "relative":
        return (accumulate(np.linalg.inv(pred))[:, :3, 3],
                relative_poses(gt_poses, start, count)[:, :3, 3])
    raise PoseEvaluationError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")


def evaluate_poses(pred_transforms: np.ndarray, gt_poses: np.ndarray,
                   length: int = SNIPPET_LENGTH, protocol: str = "original",
                   include_short: bool = False) -> PoseEvaluation:
    """ATE of predicted frame-to-frame transforms against a sequence's ground truth.

    Args:
        pred_transforms: ``[N - 1, 4, 4]`` predicted ``T[t]`` (camera ``t`` to camera ``t + 1``
            coordinates), e.g. from :func:`predict_transforms`.
        gt_poses: ``[N, 4, 4]`` camera-to-world ground truth (:func:`read_poses_file`).
        length: frames per snippet (the original's 5).
        protocol: ``original`` or ``relative``.
        include_short: also score the shorter snippets at the sequence's end, as the
            original's loop does.

    Raises:
        PoseEvaluationError: shapes that do not fit, fewer than ``length`` frames, an unknown
            protocol.
    """
    gt_poses = np.asarray(gt_poses, np.float64)
    pred_transforms = np.asarray(pred_transforms, np.float64)
    if protocol not in PROTOCOLS:
        raise PoseEvaluationError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if gt_poses.ndim != 3 or gt_poses.shape[1:] != (4, 4):
        raise PoseEvaluationError(f"ground-truth poses must be [N, 4, 4], got "
                                  f"{list(gt_poses.shape)}")
    num_frames = len(gt_poses)
    if pred_transforms.shape != (num_frames - 1, 4, 4):
        raise PoseEvaluationError(f"{num_frames} ground-truth poses need {num_frames - 1} "
                                  f"predicted transforms [N - 1, 4, 4], got "
                                  f"{list(pred_transforms.shape)}")
    if length < 2:
        raise PoseEvaluationError(f"snippet length {length} must be at least 2")
    if num_frames < length:
        raise PoseEvaluationError(f"{num_frames} frames are fewer than one snippet of {length}")
    ates = []
    for start, count in enumerate(snippet_frames(num_frames, length, include_short)):
        pred_xyz, gt_xyz = snippet_positions(pred_transforms, gt_poses, start, count, protocol)
        ates.append(compute_ate(gt_xyz, pred_xyz))
    ates = np.asarray(ates)
    return PoseEvaluation(ates, float(np.mean(ates)), float(np.std(ates)), num_frames)


def format_result(result: PoseEvaluation) -> str:
    """The original's line: ``   Trajectory error: 0.017, std: 0.009``."""
    return f"   Trajectory error: {result.mean:0.3f}, std: {result.std:0.3f}"


def load_pose_network(folder: Union[str, Path]):
    """Loads only the pose network of a weights folder (ours or the original's ``.pth``
    files): ``(ModelConfig, PoseNet)``; the depth network is neither built nor read.

    Raises:
        WeightsFolderError: the folder is missing, has no pose network, or its pose network is
            not a ``separate_resnet`` on pairs (what this evaluation runs).
    """
    from monodepth_tf.weights.folder import load_networks

    config, _, pose = load_networks(folder, with_pose=True, with_depth=False,
                                    check_config=check_pose_config)
    return config, pose


def check_pose_config(config, folder) -> None:
    """A WeightsFolderError unless ``config`` describes a separate_resnet pose network on pairs."""
    from monodepth_tf.weights.folder import WeightsFolderError

    if config.pose_model_type != PoseModelType.SEPARATE_RESNET or config.num_pose_frames != 2:
        raise WeightsFolderError(f"weights folder {folder} holds a {config.pose_model_type} pose "
                                 f"network on {config.num_pose_frames} frames; the pose "
                                 "evaluation runs a separate_resnet pose network on pairs")


def predict_transforms(pose_net, height: int, width: int, images: Iterable[np.ndarray],
                       batch_size: int = 16, on_batch=None) -> np.ndarray:
    """Runs a pairs pose network over consecutive frames.

    Args:
        pose_net: a :class:`monodepth_tf.networks.PoseNet` taking two frames ``[B, H, W, 6]``.
        height, width: its feed size; each image is resized to it with Pillow's Lanczos
            arithmetic (:func:`monodepth_tf.inference.predictor.prepare_images`), as the
            original's loader does.
        images: the sequence's uint8 RGB frames ``[h, w, 3]`` in order (read one at a time).
        batch_size: pairs per forward pass.
        on_batch: called with the number of pairs after each forward pass (progress).

    Returns:
        ``[N - 1, 4, 4]`` float32: for each pair ``[frame t, frame t + 1]`` the transform built
        from the network's first output (``axisangle[:, 0]``, ``translation[:, 0]``) without
        inversion, i.e. the predicted ``T[t]``.
    """
    import tensorflow as tf

    from monodepth_tf.geometry.transforms import transformation_from_parameters
    from monodepth_tf.inference.predictor import prepare_images

    if batch_size < 1:
        raise PoseEvaluationError(f"batch size {batch_size} must be at least 1")

    @tf.function(reduce_retracing=True, autograph=False)
    def forward(pairs):
        axisangle, translation = pose_net(pairs, training=False)
        return transformation_from_parameters(axisangle[:, 0], translation[:, 0])

    def run(pairs: List[np.ndarray]) -> np.ndarray:
        out = forward(tf.convert_to_tensor(np.stack(pairs))).numpy()
        if on_batch is not None:
            on_batch(len(pairs))
        return out

    outputs, pending, previous = [], [], None
    for image in images:
        frame = prepare_images([image], height, width)[0]
        if previous is not None:
            pending.append(np.concatenate([previous, frame], axis=-1))
        previous = frame
        if len(pending) == batch_size:
            outputs.append(run(pending))
            pending = []
    if pending:
        outputs.append(run(pending))
    if not outputs:
        return np.zeros((0, 4, 4), np.float32)
    return np.concatenate(outputs).astype(np.float32)


def iterate_frames(paths: Sequence[Path]) -> Iterator[np.ndarray]:
    """The frames of ``paths`` as uint8 RGB ``[H, W, 3]`` (grayscale files as three equal
    channels), read one at a time."""

    for path in paths:
        yield load_rgb(path)


def parse_sequences(eval_split: Optional[str], sequences: Optional[Sequence[str]]) -> List[int]:
    """The sequences to evaluate: ``--sequences`` (numbers), else ``--eval_split odom_<n>``,
    else 9 and 10.

    Raises:
        PoseEvaluationError: both are given, the split is not ``odom_<n>``, or a sequence is
            not a non-negative number.
    """
    if eval_split and sequences:
        raise PoseEvaluationError("give either --eval_split or --sequences, not both")
    if eval_split:
        prefix, _, number = eval_split.partition("_")
        if prefix != "odom" or not number.isdigit():
            raise PoseEvaluationError(f"--eval_split={eval_split} is not a pose split: use "
                                      "odom_9, odom_10 or odom_<sequence>")
        return [int(number)]
    if not sequences:
        return list(DEFAULT_SEQUENCES)
    out = []
    for text in sequences:
        text = str(text).strip()
        if not text.isdigit():
            raise PoseEvaluationError(f"--sequences: {text!r} is not a sequence number")
        out.append(int(text))
    return out
