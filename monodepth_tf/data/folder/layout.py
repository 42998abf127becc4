"""Your own footage: a dataset of image sequences or video files with their intrinsics.

Layout of ``DIR`` (``--dataset folder --data_path DIR``)::

    DIR/intrinsics.json                  the camera of every sequence (or calib_cam_to_cam.txt)
    DIR/<sequence>/<frame>.jpg|png       a sequence of frames, ordered by name (natural order:
                                         frame_2 before frame_10)
    DIR/<sequence>/intrinsics.json       this sequence's own camera (overrides DIR's)
    DIR/<sequence>/left/, right/         a stereo sequence: the same frame names in both
    DIR/<name>.mp4|avi|mov               a video (decoded once, see below)
    DIR/<name>.intrinsics.json           this video's own camera (overrides DIR's)

``intrinsics.json`` holds ``fx, fy, cx, cy`` in pixels and the ``width, height`` of the images
they refer to; optionally ``baseline`` (stereo, in the unit depth is wanted in) and ``fps``
(frame folders, for ``target_fps``). A KITTI ``calib_cam_to_cam.txt`` is read instead when
there is no ``intrinsics.json`` (``P_rect_02``, ``S_rect_02``; baseline from ``P_rect_03``).
The intrinsics are normalized as the KITTI path's (row 0 divided by the width, row 1 by the
height; see :data:`monodepth_tf.data.pipeline.NORMALIZED_K`), so any image size works; a
principal point more than ``FLIP_TOLERANCE`` of the image from the centre disables horizontal
flips for that sequence (a flipped image would need another principal point), with a warning.

Videos are decoded once, with OpenCV, into PNG frames in a cache folder (``DIR/.frames/`` by
default): tf.data then reads frames as files, in parallel and by index, exactly as the KITTI
path (decoding a video on the fly would mean seeking inside a compressed stream, which is slow,
runs under Python's lock, and lands on frames that depend on the codec's key frames). The cache
is keyed by the video's size, modification time and the frame stride, and rebuilt when they
change; PNG is lossless, so a cached frame is the decoded frame.

Subsampling: ``frame_stride`` keeps every N-th frame (videos: applied while decoding, so that
the cache holds only kept frames), ``target_fps`` chooses the stride from the frame rate
(``round(fps / target_fps)``); ``skip_static`` then drops, greedily, every frame whose mean
absolute difference (RGB in [0, 1], frames area-reduced to at most ``MOTION_WIDTH`` pixels
wide) to the last kept frame is below the threshold, so that consecutive kept frames moved.

Samples are :class:`~monodepth_tf.data.kitti.SplitEntry` s whose ``folder`` is the sequence
name and ``frame_index`` the position in the sequence's kept frames (offsets -1, +1 are the
neighbouring kept frames); side ``l`` (and ``r`` for stereo sequences). With no split given,
:func:`make_splits` divides the sequences into train and val and :func:`write_splits` writes
them where ``--split_dir``/``--split`` can read them again.
"""

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import struct
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from monodepth_tf.data.calibration import read_calib_file
from monodepth_tf.data.check import raise_on_problems, split_problems
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.kitti import (OTHER_SIDE, STEREO, FrameId, SplitEntry, frame_key,
                                     read_split)
from monodepth_tf.data.pipeline import Camera

PathLike = Union[str, Path]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")  # as bin/predict
INTRINSICS_FILE = "intrinsics.json"
KITTI_CALIB_FILE = "calib_cam_to_cam.txt"
REQUIRED_FIELDS = ("fx", "fy", "cx", "cy", "width", "height")
FLIP_TOLERANCE = 0.05
MOTION_WIDTH = 256
VAL_FRACTION = 0.1
SPLIT_NAME = "folder"
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FolderOptions:
    """How a folder dataset is read.

    Attributes:
        frame_stride: keep every N-th frame.
        target_fps: choose the stride from the frame rate instead (0: off).
        skip_static: drop frames whose motion to the last kept frame is below this (0: off).
        cache_dir: where videos are decoded (default ``DIR/.frames``).
    """

    frame_stride: int = 1
    target_fps: float = 0.0
    skip_static: float = 0.0
    cache_dir: Optional[str] = None


class CameraFile(NamedTuple):
    """One camera description as read (pixels, for images of ``width`` x ``height``)."""

    path: Path
    fx: float
    fy: float
    cx: float
    cy: float
    width: float
    height: float
    baseline: Optional[float] = None
    fps: Optional[float] = None

    def normalized_K(self) -> np.ndarray:
        """``[4, 4]`` float32: row 0 divided by the width, row 1 by the height."""
        K = np.eye(4)
        K[0, 0], K[0, 2] = self.fx / self.width, self.cx / self.width
        K[1, 1], K[1, 2] = self.fy / self.height, self.cy / self.height
        return K.astype(np.float32)

    def centred(self) -> bool:
        return (abs(self.cx / self.width - 0.5) <= FLIP_TOLERANCE
                and abs(self.cy / self.height - 0.5) <= FLIP_TOLERANCE)


class FrameSequence(NamedTuple):
    """One sequence: its kept frames (left camera; ``right`` for stereo) and its camera."""

    name: str
    source: Path
    frames: List[Path]
    right: Optional[List[Path]]
    camera: CameraFile


# ----------------------------------------------------------------------------- intrinsics

def read_intrinsics(path: PathLike) -> CameraFile:
    """Reads ``intrinsics.json`` (see the module docstring); DataError naming the file and
    the field when one is missing or not a positive number (cx, cy: a number)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable ({error})") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(values, dict):
        raise DataError(f"{path}: expected a JSON object with {', '.join(REQUIRED_FIELDS)}")
    missing = [name for name in REQUIRED_FIELDS if name not in values]
    if missing:
        raise DataError(f"{path}: missing field(s) {', '.join(missing)} (needs "
                        f"{', '.join(REQUIRED_FIELDS)} in pixels)")
    numbers = {}
    for name in REQUIRED_FIELDS + ("baseline", "fps"):
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"{path}: field {name} is {value!r}, not a number")
        if name not in ("cx", "cy") and not value > 0:
            raise DataError(f"{path}: field {name} is {value}, it must be positive")
        numbers[name] = float(value)
    return CameraFile(path, **numbers)


def read_kitti_calib(path: PathLike) -> CameraFile:
    """The left colour camera of a KITTI ``calib_cam_to_cam.txt``: ``P_rect_02`` at the size
    ``S_rect_02``; baseline from ``P_rect_03``'s offset when present."""
    calib = read_calib_file(path)
    P2 = calib.matrix("P_rect_02", (3, 4))
    width, height = calib.matrix("S_rect_02", (2,))
    baseline = None
    if "P_rect_03" in calib:
        P3 = calib.matrix("P_rect_03", (3, 4))
        baseline = float(P2[0, 3] / P2[0, 0] - P3[0, 3] / P3[0, 0])
    return CameraFile(Path(path), float(P2[0, 0]), float(P2[1, 1]), float(P2[0, 2]),
                      float(P2[1, 2]), float(width), float(height),
                      baseline if baseline and baseline > 0 else None)


def find_camera(candidates: Sequence[Path]) -> Optional[CameraFile]:
    """The first candidate that exists: ``.json`` files as intrinsics.json, others as KITTI
    calibration files."""
    for path in candidates:
        if path.is_file():
            return read_intrinsics(path) if path.suffix == ".json" else read_kitti_calib(path)
    return None


# ----------------------------------------------------------------------------- images

def image_size(path: PathLike) -> Tuple[int, int]:
    """``(height, width)`` of a PNG or JPEG from its header (no decoding); DataError naming
    the file otherwise."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            head = file.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                return int(height), int(width)
            if head.startswith(b"\xff\xd8"):
                file.seek(2)
                while True:
                    marker = file.read(2)
                    if len(marker) < 2 or marker[0] != 0xFF:
                        break
                    if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
                        continue
                    length_bytes = file.read(2)
                    if len(length_bytes) < 2:
                        break
                    length = struct.unpack(">H", length_bytes)[0]
                    if 0xC0 <= marker[1] <= 0xCF and marker[1] not in (0xC4, 0xC8, 0xCC):
                        height, width = struct.unpack(">xHH", file.read(5))
                        return int(height), int(width)
                    file.seek(length - 2, 1)
    except OSError as error:
        raise DataError(f"{path}: unreadable ({error.strerror or error})") from None
    raise DataError(f"{path}: not a PNG or JPEG image (or its header is damaged)")


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_frames(folder: Path) -> List[Path]:
    """The images of a folder in natural name order (hidden files left out)."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".") and p.is_file()), key=_natural_key)


def read_rgb_small(path: Path) -> np.ndarray:
    """A frame as float32 RGB in [0, 1], area-reduced to at most MOTION_WIDTH wide."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: cannot be decoded as an image")
    if image.shape[1] > MOTION_WIDTH:
        height = max(1, round(image.shape[0] * MOTION_WIDTH / image.shape[1]))
        image = cv2.resize(image, (MOTION_WIDTH, height), interpolation=cv2.INTER_AREA)
    return image[..., ::-1].astype(np.float32) / 255.0


def frame_motion(frames: Sequence[Path]) -> np.ndarray:
    """``[len(frames) - 1]`` mean absolute difference between consecutive frames (RGB in
    [0, 1], area-reduced as :func:`read_rgb_small`): an estimate of inter-frame motion."""
    motion, previous = [], None
    for path in frames:
        image = read_rgb_small(path)
        if previous is not None:
            motion.append(float(np.abs(image - previous).mean()))
        previous = image
    return np.array(motion, np.float64)


def skip_static_frames(frames: Sequence[Path], threshold: float) -> List[int]:
    """Positions of the frames kept: the first, then each frame whose mean absolute
    difference to the last kept frame is at least ``threshold``."""
    if not frames:
        return []
    kept, last = [0], read_rgb_small(frames[0])
    for i in range(1, len(frames)):
        image = read_rgb_small(frames[i])
        if float(np.abs(image - last).mean()) >= threshold:
            kept.append(i)
            last = image
    return kept


# ----------------------------------------------------------------------------- videos

def video_fps(path: Path) -> float:
    capture = cv2.VideoCapture(str(path))
    try:
        return float(capture.get(cv2.CAP_PROP_FPS)) if capture.isOpened() else 0.0
    finally:
        capture.release()


def decode_video(path: PathLike, cache_dir: PathLike, stride: int = 1) -> List[Path]:
    """Decodes every ``stride``-th frame of a video into ``cache_dir/<name>-<key>/<n>.png``
    once (``key`` from the video's path, size, modification time and the stride); later calls
    return the cached frames. DataError naming the video when OpenCV cannot read it."""
    path = Path(path)
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stride}"
                       .encode()).hexdigest()[:12]
    folder = Path(cache_dir) / f"{path.stem}-{key}"
    done = folder / "frames.json"
    if done.is_file():
        names = json.loads(done.read_text())["frames"]
        return [folder / name for name in names]
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"{path}: OpenCV cannot open this video (unknown container or codec, "
                        "or not a video)")
    if folder.exists():
        shutil.rmtree(folder)  # an interrupted decoding
    folder.mkdir(parents=True)
    names, index = [], 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % stride == 0:
                name = f"{len(names):06d}.png"
                if not cv2.imwrite(str(folder / name), frame):
                    raise DataError(f"{folder / name}: cannot write the decoded frame")
                names.append(name)
            index += 1
    finally:
        capture.release()
    if not names:
        shutil.rmtree(folder)
        raise DataError(f"{path}: no frame could be decoded (damaged or unsupported video)")
    done.write_text(json.dumps({"video": str(path), "stride": stride, "frames": names}) + "\n")
    return [folder / name for name in names]


# ----------------------------------------------------------------------------- the layout

def _stride(options: FolderOptions, fps: Optional[float], where: Path) -> int:
    if options.target_fps > 0:
        if not fps:
            raise DataError(f"{where}: --target_fps needs the frame rate: add \"fps\" to its "
                            "intrinsics.json (or use --frame_stride)")
        return max(1, round(fps / options.target_fps))
    return max(1, options.frame_stride)


def _check_sizes(frames: Sequence[Path], camera: CameraFile) -> Tuple[int, int]:
    """The common size of ``frames``; DataError naming the first frame of another size, or
    the intrinsics file when its aspect ratio differs from the frames'."""
    size = image_size(frames[0])
    for path in frames[1:]:
        other = image_size(path)
        if other != size:
            raise DataError(f"{path}: {other[1]}x{other[0]} image in a sequence of "
                            f"{size[1]}x{size[0]} images (first: {frames[0].name}); every "
                            "frame of a sequence must have the same size")
    aspect, expected = size[1] / size[0], camera.width / camera.height
    if abs(aspect / expected - 1) > 0.01:
        raise DataError(f"{camera.path}: intrinsics for {camera.width:g}x{camera.height:g} "
                        f"images, but {frames[0]} is {size[1]}x{size[0]} (another aspect "
                        "ratio)")
    return size


class FolderLayout:
    """Paths and cameras of a folder dataset (see the module docstring); it answers what the
    pipeline and the checks ask a layout (``sample_paths``, ``image_path``, ``drive_dir``,
    ``calib_dir``) plus ``camera(entry)``; ``has_lidar`` is False.

    Args:
        data_path: DIR.
        options: subsampling and the video cache.

    Raises:
        DataError: naming the file: no sequence, a sequence of one frame, mixed image sizes,
            missing or incomplete intrinsics, an unreadable video, left/right that differ.
    """

    def __init__(self, data_path: PathLike, options: FolderOptions = FolderOptions()):
        self.root = Path(data_path)
        self.options = options
        if not self.root.is_dir():
            raise DataError(f"--data_path={self.root}: no such folder")
        self.cache_dir = Path(options.cache_dir) if options.cache_dir else self.root / ".frames"
        self.sequences: Dict[str, FrameSequence] = {}
        dataset_camera = [self.root / INTRINSICS_FILE, self.root / KITTI_CALIB_FILE]
        for item in sorted(self.root.iterdir(), key=_natural_key):
            if item.name.startswith("."):
                continue
            if item.is_dir():
                sequence = self._frame_folder(item, dataset_camera)
            elif item.suffix.lower() in VIDEO_SUFFIXES:
                sequence = self._video(item, dataset_camera)
            else:
                continue
            if sequence is None:
                continue
            if re.search(r"\s", sequence.name):
                raise DataError(f"{sequence.source}: sequence names cannot hold spaces (split "
                                "lists are space-separated)")
            if sequence.name in self.sequences:
                raise DataError(f"{sequence.source}: a second sequence named {sequence.name} "
                                f"(also {self.sequences[sequence.name].source})")
            self.sequences[sequence.name] = sequence
        if not self.sequences:
            raise DataError(f"--data_path={self.root}: no sequence (folders of .jpg/.png "
                            f"frames or {'/'.join(VIDEO_SUFFIXES)} videos)")

    def _camera(self, where: Path, candidates: Sequence[Path]) -> CameraFile:
        camera = find_camera(candidates)
        if camera is None:
            raise DataError(f"{where}: no intrinsics (looked for "
                            f"{', '.join(str(c) for c in candidates)})")
        return camera

    def _finish(self, name: str, source: Path, frames: List[Path],
                right: Optional[List[Path]], camera: CameraFile) -> FrameSequence:
        if self.options.skip_static > 0:
            kept = skip_static_frames(frames, self.options.skip_static)
            frames = [frames[i] for i in kept]
            right = [right[i] for i in kept] if right is not None else None
        if not camera.centred():
            log.warning("%s: principal point (%g, %g) is far from the centre of %gx%g images "
                        "(more than %g of the size): horizontal flips are off for sequence %s",
                        camera.path, camera.cx, camera.cy, camera.width, camera.height,
                        FLIP_TOLERANCE, name)
        return FrameSequence(name, source, frames, right, camera)

    def _frame_folder(self, folder: Path, dataset_camera: List[Path]) -> Optional[FrameSequence]:
        own = [folder / INTRINSICS_FILE, folder / KITTI_CALIB_FILE]
        left_dir, right_dir = folder / "left", folder / "right"
        stereo = left_dir.is_dir() and right_dir.is_dir()
        frames = list_frames(left_dir if stereo else folder)
        if not frames and not stereo:
            if left_dir.is_dir() or right_dir.is_dir():
                raise DataError(f"{folder}: a stereo sequence needs both left/ and right/")
            return None  # not a sequence (e.g. a cache or an unrelated folder)
        camera = self._camera(folder, own + dataset_camera)
        stride = _stride(self.options, camera.fps, folder)
        right = None
        if stereo:
            right = list_frames(right_dir)
            if [p.name for p in right] != [p.name for p in frames]:
                raise DataError(f"{right_dir}: its frames differ from {left_dir}'s (a stereo "
                                "pair needs the same frame names on both sides)")
            if camera.baseline is None:
                raise DataError(f"{camera.path}: stereo sequence {folder} needs a \"baseline\"")
            right = right[::stride]
        frames = frames[::stride]
        if len(frames) < 2:
            only = frames[0] if frames else folder
            raise DataError(f"{only}: sequence {folder.name} has {len(frames)} frame(s) after "
                            f"subsampling (stride {stride}); a sequence needs at least 2")
        size = _check_sizes(frames, camera)
        if right is not None and image_size(right[0]) != size:
            raise DataError(f"{right[0]}: right image size differs from the left's")
        if right is not None:
            _check_sizes(right, camera)
        return self._finish(folder.name, folder, frames, right, camera)

    def _video(self, video: Path, dataset_camera: List[Path]) -> FrameSequence:
        camera = self._camera(video, [video.with_suffix(".intrinsics.json")] + dataset_camera)
        fps = camera.fps or video_fps(video)
        stride = _stride(self.options, fps, video)
        frames = decode_video(video, self.cache_dir, stride)
        if len(frames) < 2:
            raise DataError(f"{video}: {len(frames)} frame(s) decoded (stride {stride}); a "
                            "sequence needs at least 2")
        _check_sizes(frames[:1], camera)
        return self._finish(video.stem, video, frames, None, camera)

    # --- what the pipeline and the checks ask
    def _sequence(self, where) -> FrameSequence:
        name = where.folder if isinstance(where, SplitEntry) else str(where)
        if name not in self.sequences:
            raise DataError(f"{self.root}: no sequence named {name}")
        return self.sequences[name]

    def drive_dir(self, where) -> Path:
        """The folder of a sequence's frames (a video's: its cache folder)."""
        return self._sequence(where).frames[0].parent

    def calib_dir(self, where) -> Path:
        return self.drive_dir(where)

    def image_path(self, where, frame_index: Optional[int] = None,
                   side: Optional[str] = None) -> Path:
        """The kept frame at ``frame_index`` (a position) of a sequence and side."""
        sequence = self._sequence(where)
        if isinstance(where, SplitEntry):
            frame_index = where.frame_index if frame_index is None else frame_index
            side = side or where.side
        side = side or "l"
        frames = sequence.frames if side == "l" else sequence.right
        if frames is None:
            raise DataError(f"{sequence.source}: no right camera (stereo needs left/ and "
                            "right/ folders)")
        if not 0 <= frame_index < len(frames):
            raise DataError(f"{sequence.source}: frame {frame_index} is outside the "
                            f"sequence's {len(frames)} kept frames")
        return frames[frame_index]

    def frame_path(self, entry: SplitEntry, frame_id: FrameId) -> Path:
        key = frame_key(frame_id)
        if key == STEREO:
            return self.image_path(entry, entry.frame_index, OTHER_SIDE[entry.side])
        return self.image_path(entry, entry.frame_index + int(key), entry.side)

    def sample_paths(self, entry: SplitEntry, frame_ids: Sequence[FrameId]) -> Dict[str, Path]:
        return {frame_key(f): self.frame_path(entry, f) for f in frame_ids}

    has_lidar = False  # validation reports the loss only

    def camera(self, entry: SplitEntry) -> Camera:
        """The pipeline's :class:`Camera` of an entry's sequence."""
        c = self._sequence(entry).camera
        return Camera(c.normalized_K(), c.centred(),
                      c.baseline if c.baseline is not None else 0.1)

    # --- samples
    def samples(self, frame_ids: Sequence[FrameId], name: Optional[str] = None
                ) -> List[SplitEntry]:
        """Every usable sample (of one sequence, or all): positions whose frames ``frame_ids``
        all exist; both sides of stereo sequences, the left of the others (``"s"`` in
        ``frame_ids`` needs stereo: mono sequences then give none)."""
        keys = [frame_key(f) for f in frame_ids]
        offsets = [int(k) for k in keys if k != STEREO]
        entries = []
        for sequence in ([self.sequences[name]] if name else self.sequences.values()):
            if STEREO in keys and sequence.right is None:
                continue
            sides = ("l", "r") if sequence.right is not None else ("l",)
            first, last = -min(offsets), len(sequence.frames) - 1 - max(offsets)
            for index in range(first, last + 1):
                entries += [SplitEntry(sequence.name, index, side) for side in sides]
        return entries

    def too_short(self, frame_ids: Sequence[FrameId]) -> List[str]:
        """Names of sequences that give no sample for ``frame_ids``."""
        return [name for name in self.sequences if not self.samples(frame_ids, name)]


# ----------------------------------------------------------------------------- splits

def make_splits(layout: FolderLayout, frame_ids: Sequence[FrameId],
                val_fraction: float = VAL_FRACTION) -> Tuple[List[SplitEntry], List[SplitEntry]]:
    """A deterministic ``(train, val)`` division by sequence: ``count = round(val_fraction *
    n)`` sequences (at least 1, at most n - 1) go to val, every ``n // count``-th in name
    order. With one sequence, val is its last ``val_fraction`` of sample positions (a
    contiguous tail), train the rest."""
    names = [n for n in layout.sequences if layout.samples(frame_ids, n)]
    if not names:
        raise DataError(f"--data_path={layout.root}: no sequence is long enough for frames "
                        f"{','.join(frame_key(f) for f in frame_ids)}")
    if len(names) == 1:
        entries = layout.samples(frame_ids, names[0])
        positions = sorted({e.frame_index for e in entries})
        cut = positions[len(positions) - int(round(val_fraction * len(positions)))] \
            if round(val_fraction * len(positions)) >= 1 else positions[-1] + 1
        return ([e for e in entries if e.frame_index < cut],
                [e for e in entries if e.frame_index >= cut])
    count = min(len(names) - 1, max(1, int(round(val_fraction * len(names)))))
    every = len(names) // count
    val_names = {names[every * (i + 1) - 1] for i in range(count)}
    train = [e for n in names if n not in val_names for e in layout.samples(frame_ids, n)]
    val = [e for n in names if n in val_names for e in layout.samples(frame_ids, n)]
    return train, val


def write_splits(split_dir: PathLike, train: Sequence[SplitEntry], val: Sequence[SplitEntry],
                 name: str = SPLIT_NAME) -> Path:
    """Writes ``<split_dir>/<name>/{train,val}_files.txt`` (readable by ``read_split``)."""
    folder = Path(split_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    for list_name, entries in (("train", train), ("val", val)):
        lines = "".join(f"{e.folder} {e.frame_index} {e.side}\n" for e in entries)
        (folder / f"{list_name}_files.txt").write_text(lines)
    return folder


def open_splits(layout: FolderLayout, frame_ids: Sequence[FrameId], write_to: PathLike,
                split_dir: Optional[PathLike] = None, split: str = SPLIT_NAME
                ) -> Tuple[List[SplitEntry], List[SplitEntry]]:
    """``(train, val)``: read from ``split_dir/split`` when given, else made by
    :func:`make_splits`; either way written to ``write_to/<split>`` (the run's copy)."""
    if split_dir:
        train, val = read_split(split_dir, split, "train"), read_split(split_dir, split, "val")
    else:
        train, val = make_splits(layout, frame_ids)
    write_splits(write_to, train, val, split)
    return train, val


# ----------------------------------------------------------------------------- export

def export_kitti_drive_as_folder(kitti_root: PathLike, drive: str, output_dir: PathLike,
                                 name: str, ext: str = "png", stereo: bool = False,
                                 camera: Optional[dict] = None) -> Path:
    """Copies one KITTI raw drive's frames to ``output_dir/<name>/`` (``left/``, ``right/``
    with ``stereo``) and writes ``output_dir/<name>/intrinsics.json``: ``camera`` (fx, fy, cx,
    cy, width, height, ...) when given, else the drive's ``calib_cam_to_cam.txt``."""
    source = Path(kitti_root) / drive
    target = Path(output_dir) / name
    sides = (("image_02", "left"), ("image_03", "right")) if stereo else (("image_02", ""),)
    for camera_dir, side in sides:
        destination = target / side if side else target
        destination.mkdir(parents=True, exist_ok=True)
        for path in sorted((source / camera_dir / "data").glob(f"*.{ext}")):
            shutil.copyfile(path, destination / path.name)
    if camera is None:
        c = read_kitti_calib(Path(kitti_root) / Path(drive).parts[0] / KITTI_CALIB_FILE)
        camera = {k: getattr(c, k) for k in REQUIRED_FIELDS + ("baseline",)
                  if getattr(c, k) is not None}
    (target / INTRINSICS_FILE).write_text(json.dumps(camera, indent=2) + "\n")
    return target


# ----------------------------------------------------------------------------- training

def open_folder_data(options) -> Tuple[FolderLayout, List[SplitEntry], List[SplitEntry]]:
    """``(layout, train, val)`` of ``--dataset=folder`` from a ``TrainOptions``: the video
    cache in ``DIR/.frames`` (``<run dir>/frames`` when DIR is read-only), the split read from
    ``--split_dir/--split`` when ``--split_dir`` is given, else made by :func:`make_splits`;
    either way written to ``<run dir>/splits/<split>`` (``folder`` when made), so that
    ``--split_dir=<run dir>/splits --split=folder`` repeats the run. Every file the samples
    need is checked (one DataError listing every problem)."""
    root = Path(options.data_path).expanduser()
    cache = root / ".frames"
    if not (cache.is_dir() and os.access(cache, os.W_OK)) and not os.access(root, os.W_OK):
        cache = options.run_dir / "frames"
    layout = FolderLayout(root, FolderOptions(options.frame_stride, options.target_fps,
                                              options.skip_static, str(cache)))
    frame_ids = options.all_frame_ids
    short = layout.too_short(frame_ids)
    if short:
        log.warning("sequence(s) too short for frames %s (no sample): %s",
                    ",".join(frame_key(f) for f in frame_ids), ", ".join(short))
    if options.split_dir:
        train, val = open_splits(layout, frame_ids, options.run_dir / "splits",
                                 options.split_dir, options.split)
        source = f"--split_dir={options.split_dir} --split={options.split}"
    else:
        train, val = open_splits(layout, frame_ids, options.run_dir / "splits")
        source = f"--data_path={root} (split written to {options.run_dir / 'splits'})"
    problems = split_problems(layout, train, frame_ids, source="train_files.txt")
    problems += split_problems(layout, val, frame_ids, source="val_files.txt")
    raise_on_problems(problems, source)
    return layout, train, val


# ----------------------------------------------------------------------------- checking

class SequenceReport(NamedTuple):
    """What ``bin/check_data`` reports of one sequence.

    Attributes:
        name, source: the sequence and its folder or video.
        frames: kept frames (after subsampling and static-frame skipping).
        samples: usable samples for the frame ids (0: too short).
        motion: mean absolute difference between consecutive kept frames (RGB in [0, 1]),
            mean over the sequence (NaN with fewer than 2 frames).
        min_motion: the smallest such difference (a static stretch shows as ~0).
    """

    name: str
    source: Path
    frames: int
    samples: int
    motion: float
    min_motion: float


def check_folder(layout: FolderLayout, frame_ids: Sequence[FrameId]
                 ) -> Tuple[List[SequenceReport], List[str]]:
    """Per-sequence reports and every problem with the files the usable samples need."""
    reports = []
    for name, sequence in layout.sequences.items():
        motion = frame_motion(sequence.frames)
        reports.append(SequenceReport(
            name, sequence.source, len(sequence.frames), len(layout.samples(frame_ids, name)),
            float(motion.mean()) if motion.size else float("nan"),
            float(motion.min()) if motion.size else float("nan")))
    problems = split_problems(layout, layout.samples(frame_ids), frame_ids,
                              source="the usable samples")
    return reports, problems


def format_reports(reports: Sequence[SequenceReport], frame_ids: Sequence[FrameId]) -> str:
    """A table: sequence, kept frames, usable samples, motion (mean, min), note."""
    ids = ",".join(frame_key(f) for f in frame_ids)
    width = max([len("sequence")] + [len(r.name) for r in reports])
    lines = [f"{'sequence':<{width}}  {'frames':>6}  {'samples':>7}  {'motion':>7}  "
             f"{'min':>7}  note"]
    for r in reports:
        note = f"too short for frames {ids}" if r.samples == 0 else ""
        lines.append(f"{r.name:<{width}}  {r.frames:>6d}  {r.samples:>7d}  {r.motion:>7.4f}  "
                     f"{r.min_motion:>7.4f}  {note}".rstrip())
    total = sum(r.samples for r in reports)
    lines.append(f"{total} usable samples (frames {ids}) in {len(reports)} sequence(s); "
                 "motion: mean absolute difference between consecutive frames, RGB in [0, 1]")
    return "\n".join(lines)


def folder_samples(data_path: PathLike, frame_ids: Sequence[FrameId], list_name: str = "train",
                   split_dir: Optional[PathLike] = None, split: str = SPLIT_NAME,
                   options: FolderOptions = FolderOptions()
                   ) -> Tuple[FolderLayout, List[SplitEntry]]:
    """The layout and one list (``train`` or ``val``) of a folder dataset: read from
    ``split_dir/split`` when given, else as :func:`make_splits` divides it."""
    layout = FolderLayout(data_path, options)
    if split_dir:
        return layout, read_split(split_dir, split, list_name)
    train, val = make_splits(layout, frame_ids)
    if list_name not in ("train", "val"):
        raise DataError(f"a folder dataset without --split_dir has train and val lists, not "
                        f"{list_name}")
    return layout, train if list_name == "train" else val
