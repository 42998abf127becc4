"""FolderLayout: the sequences of a folder dataset (frame folders, stereo pairs, videos), their
kept frames and cameras, answering what the pipeline and the checks ask a layout."""

import dataclasses
import logging
import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from monodepth_tf.data.errors import DataError
from monodepth_tf.data.folder.camera_files import (FLIP_TOLERANCE, INTRINSICS_FILE,
                                                   KITTI_CALIB_FILE, CameraFile, find_camera)
from monodepth_tf.data.folder.image_header import image_size
from monodepth_tf.data.folder.motion import skip_static_frames
from monodepth_tf.data.folder.video import decode_video, video_fps
from monodepth_tf.data.frames import OTHER_SIDE, STEREO, FrameId, frame_key
from monodepth_tf.data.layout import Camera
from monodepth_tf.data.splits import SplitEntry

PathLike = Union[str, Path]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v")  # as bin/predict
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


class FrameSequence(NamedTuple):
    """One sequence: its kept frames (left camera; ``right`` for stereo) and its camera."""

    name: str
    source: Path
    frames: List[Path]
    right: Optional[List[Path]]
    camera: CameraFile


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_frames(folder: Path) -> List[Path]:
    """The images of a folder in natural name order (hidden files left out)."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".") and p.is_file()), key=_natural_key)


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
