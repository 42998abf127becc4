"""Videos decoded once, with OpenCV, into a cache folder of PNG frames."""

import hashlib
import json
import shutil
from pathlib import Path
from typing import List, Union

import cv2

from monodepth_tf.data.errors import DataError

PathLike = Union[str, Path]


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
