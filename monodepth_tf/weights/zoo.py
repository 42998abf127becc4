"""Trained models by name: the original Monodepth2 release's, and the GluonCV tutorial's names.

    >>> from monodepth_tf import zoo
    >>> zoo.resolve("monodepth2_resnet18_kitti_stereo_640x192").original_name
    'stereo_640x192'
    >>> zoo.RELEASES["mono_640x192"].md5
    'a964b8356e08a02d009609d9e3928f7c'

A release name (``mono_640x192``, ``stereo_1024x320``, ... see :data:`RELEASES`) is downloaded on
first use from the original's address (``$MONODEPTH_ZOO_URL`` replaces it, e.g. with a mirror),
checked (the built-in MD5 at the official address; a mirror's ``<name>.zip.md5`` when it serves
one), converted once into a weights folder, and cached in ``$MONODEPTH_ZOO_DIR/<name>/`` (default
``~/.keras/monodepth_tf/zoo/<name>/``). A GluonCV name stands for the original's release of the
same configuration (its ``original_name``), unless ``<zoo dir>/<GluonCV name>/`` holds weights of
its own. A folder unpacked there by hand (the original's ``.pth`` files) is used as it is.

The released models are the original authors' and come under their licence: non-commercial use
only (:data:`LICENCE_URL`).
"""

import contextlib
import dataclasses
import glob
import os
import shutil
import sys
import tempfile
import urllib.parse
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, TextIO, Tuple, Union

from monodepth_tf.download import DownloadError, download, fetch_text, parse_md5, verify_md5
from monodepth_tf.weights.folder import (CONFIG_FILE, WeightsFolderError,
                                         config_from_pytorch_folder, convert_pytorch_folder,
                                         load_networks, read_config)

ZOO_DIR_VARIABLE = "MONODEPTH_ZOO_DIR"
URL_VARIABLE = "MONODEPTH_ZOO_URL"
DEFAULT_ZOO_DIR = Path("~/.keras/monodepth_tf/zoo")
OFFICIAL_URL = "https://storage.googleapis.com/niantic-lon-static/research/monodepth2/"
LICENCE_URL = "https://github.com/nianticlabs/monodepth2/blob/master/LICENSE"
LICENCE_NOTE = ("The Monodepth2 models are Niantic's, released for non-commercial use only "
                f"under the licence of the original code: {LICENCE_URL}")
MODES = ("mono", "stereo", "mono_stereo")
FRAME_IDS = {"mono": (0, -1, 1), "stereo": (0,), "mono_stereo": (0, -1, 1)}


class UnknownModelError(ValueError):
    """A model name that is not one of :func:`names`."""


class ZooDownloadError(DownloadError):
    """A release could not be downloaded or failed its checksum (the message is one line: the
    address, the cause, and where to unzip the file by hand)."""


class ZooArchiveError(WeightsFolderError):
    """A downloaded release is not a zip of the expected checkpoints, or not the model named."""


@dataclasses.dataclass(frozen=True)
class Release:
    """One trained model of the original release (facts from its README and ``utils.py``).

    Attributes:
        name: the release's name, also its zip's name and its folder in the zip.
        mode: ``mono``, ``stereo`` or ``mono_stereo``.
        height, width: its feed size.
        num_layers: ResNet depth of its encoders.
        imagenet: its encoders started from ImageNet weights.
        split: the training split (``eigen_zhou``, ``eigen_full`` or ``odom``).
        md5: the MD5 of its zip, None when the original publishes none.
        abs_rel, a1: the published Eigen-split scores (None when none are published).
    """

    name: str
    mode: str
    height: int = 192
    width: int = 640
    num_layers: int = 18
    imagenet: bool = True
    split: str = "eigen_zhou"
    md5: Optional[str] = None
    abs_rel: Optional[float] = None
    a1: Optional[float] = None

    @property
    def has_pose(self) -> bool:
        """The zip holds a pose network (``pose_encoder.pth`` + ``pose.pth``)."""
        return self.mode != "stereo"

    @property
    def files(self) -> Tuple[str, ...]:
        """The checkpoints the zip must hold."""
        return ("encoder.pth", "depth.pth") + \
            (("pose_encoder.pth", "pose.pth") if self.has_pose else ())


def _releases() -> Dict[str, Release]:
    published = [  # name, mode, width x height, ImageNet, MD5, abs_rel, a1
        ("mono_640x192", "mono", 640, 192, True, "a964b8356e08a02d009609d9e3928f7c", .115, .877),
        ("stereo_640x192", "stereo", 640, 192, True, "3dfb76bcff0786e4ec07ac00f658dd07", .109,
         .864),
        ("mono+stereo_640x192", "mono_stereo", 640, 192, True,
         "c024d69012485ed05d7eaa9617a96b81", .106, .874),
        ("mono_1024x320", "mono", 1024, 320, True, "0ab0766efdfeea89a0d9ea8ba90e1e63", .115, .879),
        ("stereo_1024x320", "stereo", 1024, 320, True, "afc2f2126d70cf3fdf26b550898b501a", .107,
         .874),
        ("mono+stereo_1024x320", "mono_stereo", 1024, 320, True,
         "cdc5fc9b23513c07d5b19235d9ef08f7", .106, .876),
        ("mono_no_pt_640x192", "mono", 640, 192, False, "9c2f071e35027c895a4728358ffc913a", .132,
         .845),
        ("stereo_no_pt_640x192", "stereo", 640, 192, False, "41ec2de112905f85541ac33a854742d1",
         .130, .831),
        ("mono+stereo_no_pt_640x192", "mono_stereo", 640, 192, False,
         "46c3b824f541d143a45c37df65fbab0a", .127, .836),
    ]
    table = {}
    for name, mode, width, height, imagenet, md5, abs_rel, a1 in published:
        split = "eigen_full" if mode == "stereo" else "eigen_zhou"
        table[name] = Release(name, mode, height, width, imagenet=imagenet, split=split, md5=md5,
                              abs_rel=abs_rel, a1=a1)
    for name, mode, layers, imagenet, split in (
            ("mono_odom_640x192", "mono", 18, True, "odom"),
            ("mono+stereo_odom_640x192", "mono_stereo", 18, True, "odom"),
            ("mono_resnet50_640x192", "mono", 50, True, "eigen_zhou"),
            ("mono_resnet50_no_pt_640x192", "mono", 50, False, "eigen_zhou")):
        table[name] = Release(name, mode, num_layers=layers, imagenet=imagenet, split=split)
    return table


RELEASES: Dict[str, Release] = _releases()


@dataclasses.dataclass(frozen=True)
class Preset:
    """What a model name stands for (a GluonCV name, or a release name).

    Attributes:
        name: the name.
        mode: training mode, as ``bin/train --mode``: ``mono``, ``stereo`` or ``mono_stereo``.
        num_layers: ResNet depth of the encoder(s).
        height, width: the feed size.
        frame_ids: temporal frames used in training (``(0,)`` for stereo-only).
        use_stereo: trained with the stereo pair (depth is metric after x5.4).
        is_pose: the name stands for the pose network (its folder needs pose weights).
        original_name: the original release of the same model (whose zip is downloaded).
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


def _gluoncv_presets() -> Dict[str, Preset]:
    table = {}
    for mode in MODES:
        original = {"mono": "mono", "stereo": "stereo", "mono_stereo": "mono+stereo"}[mode]
        kinds = (False, True) if mode != "stereo" else (False,)  # stereo-only has no pose net
        for is_pose in kinds:
            name = f"monodepth2_resnet18_{'posenet_' if is_pose else ''}kitti_{mode}_640x192"
            table[name] = Preset(name, mode, frame_ids=FRAME_IDS[mode],
                                 use_stereo=mode != "mono", is_pose=is_pose,
                                 original_name=f"{original}_640x192")
    return table


def _release_presets() -> Dict[str, Preset]:
    return {r.name: Preset(r.name, r.mode, r.num_layers, r.height, r.width, FRAME_IDS[r.mode],
                           use_stereo=r.mode != "mono", original_name=r.name)
            for r in RELEASES.values()}


PRESETS: Dict[str, Preset] = _gluoncv_presets()  # the GluonCV tutorial's names
ALL_PRESETS: Dict[str, Preset] = {**PRESETS, **_release_presets()}


def names() -> Tuple[str, ...]:
    """Every known model name (GluonCV's and the release's), sorted."""
    return tuple(sorted(ALL_PRESETS))


def is_model_name(text: str) -> bool:
    """``text`` is a known model name."""
    return text in ALL_PRESETS


def resolve(name: Union[str, Preset]) -> Preset:
    """The preset of a model name.

    Raises:
        UnknownModelError: the name is unknown (the message lists the known ones).
    """
    if isinstance(name, Preset):
        return name
    if name not in ALL_PRESETS:
        raise UnknownModelError(f"unknown model-zoo name {name!r}; known names: "
                                f"{', '.join(names())}")
    return ALL_PRESETS[name]


def zoo_dir() -> Path:
    """Where model folders are cached: ``$MONODEPTH_ZOO_DIR`` or ``~/.keras/monodepth_tf/zoo``."""
    return Path(os.environ.get(ZOO_DIR_VARIABLE) or DEFAULT_ZOO_DIR).expanduser()


def base_url() -> str:
    """Where release zips are downloaded from: ``$MONODEPTH_ZOO_URL`` or the official address
    (always ending in ``/``)."""
    url = os.environ.get(URL_VARIABLE) or OFFICIAL_URL
    return url if url.endswith("/") else url + "/"


def release_url(name: str) -> str:
    """The address of a release's zip (``+`` written ``%2B``)."""
    return base_url() + urllib.parse.quote(name) + ".zip"


def _holds_weights(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() or any(folder.glob("*.pth"))


def weights_folder(name: Union[str, Preset], stream: Optional[TextIO] = None) -> Path:
    """The local weights folder of a model name, downloaded and converted on first use.

    Args:
        name: a release name or a GluonCV name.
        stream: where the download's messages and progress go (stderr by default).

    Raises:
        UnknownModelError: the name is unknown.
        ZooDownloadError: offline, an HTTP error, an interrupted download or a wrong checksum
            (one line: the address, the cause, the folder to unzip the release into by hand).
        ZooArchiveError: the file is not a zip of the expected checkpoints of that model.
    """
    preset = resolve(name)
    own = zoo_dir() / preset.name  # a GluonCV name's own folder, put there by hand
    if own.is_dir() and _holds_weights(own):
        return own
    folder = zoo_dir() / preset.original_name
    if folder.is_dir() and _holds_weights(folder):
        return folder
    with _lock(zoo_dir() / f".{preset.original_name}.lock"):
        if not (folder.is_dir() and _holds_weights(folder)):  # another process may have done it
            fetch_release(preset.original_name, stream)
    return folder


def find_weights(name_or_path: str, flag: str = "--load_weights_folder",
                 stream: Optional[TextIO] = None) -> Path:
    """The weights folder that a flag's value names: an existing folder (which always wins),
    else a model name (downloaded on first use).

    Raises:
        ValueError: neither a folder nor a known name (the message names ``flag``); the errors
            of :func:`weights_folder`.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if is_model_name(name_or_path):
        return weights_folder(name_or_path, stream)
    raise ValueError(f"{flag} {path} does not exist, and is not a model name (known names: "
                     f"{', '.join(names())})")


@contextlib.contextmanager
def _lock(path: Path):
    """Holds an exclusive lock on ``path`` (created) where the platform has ``fcntl``, so that
    two processes do not download the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): go ahead unlocked
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mirror_md5(name: str) -> Optional[str]:
    """The MD5 in the ``<name>.zip.md5`` a mirror serves beside the zip; None when it serves
    none."""
    url = release_url(name) + ".md5"
    text = fetch_text(url)
    return None if text is None else parse_md5(text, url)


def _download_checked(name: str, zip_path: Path, stream: TextIO) -> Optional[str]:
    """Downloads a release's zip to ``zip_path`` and checks it: the built-in MD5 at the official
    address; a mirror's ``.md5`` file when it serves one. Returns the MD5 checked (None: none
    known)."""
    url = release_url(name)
    if base_url() == OFFICIAL_URL:
        md5 = RELEASES[name].md5
        download(url, zip_path, md5=md5, stream=stream)
        return md5
    download(url, zip_path, stream=stream)
    md5 = mirror_md5(name)
    if md5 is not None:
        verify_md5(zip_path, md5, url)
    return md5


def fetch_release(name: str, stream: Optional[TextIO] = None) -> Path:
    """Downloads a release, checks it, converts it into ``<zoo dir>/<name>/`` and returns that.

    Everything happens in a temporary folder beside the cache folder, renamed into place once
    complete; on any failure it is removed, so the cache holds the whole model or nothing.
    Leftovers of a killed run (hidden ``.<name>.*`` folders) are removed first; the caller
    holds the model's lock (:func:`weights_folder`), so no other process is using them.

    Raises:
        ZooDownloadError, ZooArchiveError: see :func:`weights_folder`.
    """
    release, stream = RELEASES[name], stream or sys.stderr
    cache, url = zoo_dir(), release_url(name)
    for leftover in cache.glob(f".{glob.escape(name)}.*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.tmp", dir=cache))
    try:
        print(f"-> model {name}: downloading {url}\n{LICENCE_NOTE}", file=stream, flush=True)
        zip_path = work / f"{name}.zip"
        try:
            md5 = _download_checked(name, zip_path, stream)
        except DownloadError as error:
            raise ZooDownloadError(
                f"cannot download model {name}: {error} -- to install it by hand, fetch "
                f"{url} and unzip it into {cache} (giving {cache / name}/encoder.pth)") from None
        checked = f"MD5 {md5} checked" if md5 else "no MD5 published for it: not checked"
        print(f"-> {checked}; converting", file=stream, flush=True)
        pytorch_dir = unpack_checkpoints(zip_path, work / "pth", release, url)
        _convert_release(pytorch_dir, cache / name, release, url, md5)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"-> model {name} cached in {cache / name}", file=stream, flush=True)
    return cache / name


def unpack_checkpoints(zip_path: Path, into: Path, release: Release, url: str = "") -> Path:
    """Extracts a release zip's checkpoints into the folder ``into`` (made); returns it.

    The checkpoints may sit in one folder (``<name>/encoder.pth``, as the original's zips) or
    at the zip's root; only the four checkpoint names (``encoder.pth``, ``depth.pth``,
    ``pose_encoder.pth``, ``pose.pth``) are read, written under their base names, so no member
    can write outside ``into``.

    Raises:
        ZooArchiveError: not a zip, a corrupt member, a missing or twice-present checkpoint.
    """
    source = url or str(zip_path)
    wanted = {f"{n}.pth" for n in ("encoder", "depth", "pose_encoder", "pose")}
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = _checkpoint_members(archive.infolist(), wanted, source)
            missing = [f for f in release.files if f not in members]
            if missing:
                raise ZooArchiveError(
                    f"{source} lacks {', '.join(missing)}: a {release.name} zip holds "
                    f"{', '.join(release.files)} (in a folder {release.name}/ or at its root)")
            into.mkdir(parents=True)
            for base, info in members.items():
                with archive.open(info) as packed, open(into / base, "wb") as out:
                    shutil.copyfileobj(packed, out)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ZooArchiveError(f"{source} is not a valid zip file ({error})") from None
    return into


def _checkpoint_members(infos: List[zipfile.ZipInfo], wanted, source: str) -> Dict:
    """``{base name: member}`` of the wanted files at the root or one folder deep."""
    members: Dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        path = PurePosixPath(info.filename)
        if info.is_dir() or path.name not in wanted or len(path.parts) > 2:
            continue
        if path.name in members:
            raise ZooArchiveError(f"{source} holds {path.name} twice ({members[path.name].filename}"
                                  f" and {info.filename}): which model is meant?")
        members[path.name] = info
    return members


def _convert_release(pytorch_dir: Path, folder: Path, release: Release, url: str,
                     md5: Optional[str]) -> None:
    """Checks that the checkpoints are the release named (ResNet depth, feed size), then
    converts them into ``folder`` (written atomically)."""

    try:
        config = config_from_pytorch_folder(pytorch_dir)
    except (ValueError, KeyError) as error:
        raise ZooArchiveError(f"{url}: its checkpoints cannot be read ({error})") from None
    found = (config.num_layers, config.width, config.height)
    if found != (release.num_layers, release.width, release.height):
        raise ZooArchiveError(
            f"{url} holds a ResNet-{found[0]} at {found[1]}x{found[2]}, but {release.name} is a "
            f"ResNet-{release.num_layers} at {release.width}x{release.height}")
    extra = {"converted_from": url, "md5": md5, "release": release.name,
             "licence": LICENCE_URL}
    try:
        convert_pytorch_folder(pytorch_dir, folder, extra)
    except (ValueError, KeyError) as error:
        raise ZooArchiveError(f"{url}: its checkpoints do not convert ({error})") from None


def load(name: Union[str, Preset], with_pose: Optional[bool] = None, with_depth: bool = True):
    """Loads a zoo model's networks: ``(ModelConfig, DepthNet or None, PoseNet or None)``.

    Args:
        name: a release name or a GluonCV name.
        with_pose: also load the pose network (default: for pose names only).
        with_depth: load the depth network (False: the pose network only).

    Raises:
        UnknownModelError, ZooDownloadError, ZooArchiveError (see :func:`weights_folder`);
        WeightsFolderError when the folder's networks are not the preset's architecture
        (ResNet depth) or lack the pose network.
    """

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
    return load_networks(folder, with_pose=with_pose, with_depth=with_depth)
