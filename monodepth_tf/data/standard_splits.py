"""The standard KITTI split lists, fetched from the original Monodepth2 release on request.

``eigen``, ``eigen_zhou``, ``eigen_full``, ``eigen_benchmark``, ``odom`` and ``benchmark`` are
published in the ``splits/`` folder of github.com/nianticlabs/monodepth2 under its licence
(non-commercial use only), so the project does not ship them. ``bin/download_kitti
--splits_only`` (:func:`fetch_standard_splits`) fetches them from one pinned commit of that
repository, refuses any file whose SHA-256 differs from the table below, and stores the
release's licence next to them as ``LICENSE_monodepth2.txt``.

``$MONODEPTH_SPLITS_URL`` replaces the address of that commit (a mirror, or a local server in
the tests); it must hold the same tree (``splits/<split>/<file>`` and ``LICENSE``).
"""

import hashlib
import os
from pathlib import Path
from typing import Dict, Iterable, List, Union

from monodepth_tf.data.splits import STANDARD_SPLITS
from monodepth_tf.download import DownloadError, download

PathLike = Union[str, Path]

PINNED_COMMIT = "b676244e5a1ca55564eb5d16ab521a48f823af31"  # monodepth2 HEAD, 2022-01-29
DEFAULT_SPLITS_URL = f"https://raw.githubusercontent.com/nianticlabs/monodepth2/{PINNED_COMMIT}"
SPLITS_URL_VARIABLE = "MONODEPTH_SPLITS_URL"

LICENSE_SOURCE = "LICENSE"                      # in the release
LICENSE_NAME = "LICENSE_monodepth2.txt"         # in the split folder
LICENSE_SHA256 = "e02c50ac489412782c230c9c3f59ce4368686b98a7c33b1c1198ae82cbe7379b"

# SHA-256 of every file of the release's splits/<split>/ folders at PINNED_COMMIT.
SPLIT_FILES: Dict[str, str] = {
    "benchmark/eigen_to_benchmark_ids.npy":
        "1c1ac4ea84c938622f228a4438661fdb66ec07a2380a54bd21cd28b6eeb1a4e8",
    "benchmark/test_files.txt":
        "b9b0746d2e5263d975fd082d6e82d592971adc9e6a2fdf370a8cf78519161d28",
    "benchmark/train_files.txt":
        "060fdce26c5cd0681b6cc7620a856c697caa78fd23ab7a9ba41fb39c70ae3860",
    "benchmark/val_files.txt":
        "5c65577de234037bec0c792d7bf44c60b7fb367449266054eb4612a5e92bfa08",
    "eigen/test_files.txt":
        "e226d4ca16e0e6e9695435014347dcf973588531330536fd8a68d298ef091a6b",
    "eigen_benchmark/test_files.txt":
        "d56e5e509e6960a01fb93795f85028ac6e4a82ad40e64b6e968988e4db95b9be",
    "eigen_full/train_files.txt":
        "1b491141d87b7af9e6706609b7ce858c198c3a4ca61d180c7dc90815d5f2a986",
    "eigen_full/val_files.txt":
        "9c4446772ec58aaa60acbeef0fa6d1e8ef1b346ad4f78272d056d10cf1993af9",
    "eigen_zhou/train_files.txt":
        "00173a231642151c4693274e701ddd4cae7916520a757c7a94eae8e1173f7b0c",
    "eigen_zhou/val_files.txt":
        "64a868b8d2c66c3979a2d74c22ea2e9146850d5b9f5786ed8e5f92201ba1ad04",
    "odom/test_files_09.txt":
        "8b999b6f974041663ba2f8aa6456ea338089a272119b7edd702f352278f43d26",
    "odom/test_files_10.txt":
        "f39c47e0c21f65d4503476375f2a786def34f54bd5d1cabf28c7e68f002986a1",
    "odom/train_files.txt":
        "ced6c5fd1b0b76e2a28d68e046421c1f0df08de8fb713ca305684d263af6d0e2",
    "odom/val_files.txt":
        "9cf46e1b873d6f9883015b1f77fcace51db424a1f0a765324957f46399b6db99",
}


def splits_url() -> str:
    """The release's base address: ``$MONODEPTH_SPLITS_URL`` or the pinned GitHub commit."""
    return (os.environ.get(SPLITS_URL_VARIABLE) or DEFAULT_SPLITS_URL).rstrip("/")


def sha256_of(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_checked(url: str, dest: Path, sha256: str) -> bool:
    """Fetches ``url`` to ``dest`` unless ``dest`` already has the right bytes.

    Returns:
        True when the file was fetched, False when it was already there.

    Raises:
        DownloadError: the fetched bytes have another checksum (nothing is written), or
            ``dest`` exists with other bytes (it is left alone).
    """
    if dest.exists():
        if sha256_of(dest) == sha256:
            return False
        raise DownloadError(f"{dest} exists and differs from the Monodepth2 release "
                            f"(commit {PINNED_COMMIT}); move it away to fetch the original")
    staged = dest.with_name(dest.name + ".fetched")
    download(url, staged, progress=False, resume=False)
    got = sha256_of(staged)
    if got != sha256:
        staged.unlink()
        raise DownloadError(f"{url}: SHA-256 {got} is not the release's {sha256}; refused "
                            "(nothing written)")
    os.replace(staged, dest)
    return True


def fetch_standard_splits(split_dir: PathLike,
                          splits: Iterable[str] = STANDARD_SPLITS) -> List[Path]:
    """Fetches the standard split lists (and the release's licence) into ``split_dir``.

    Args:
        split_dir: the folder of split folders (created).
        splits: which of :data:`STANDARD_SPLITS` to fetch.

    Returns:
        The files written (those already present with the right checksum are skipped).

    Raises:
        ValueError: a name is not a standard split.
        DownloadError: a file could not be fetched or has the wrong checksum.
    """
    splits = list(splits)
    unknown = [name for name in splits if name not in STANDARD_SPLITS]
    if unknown:
        raise ValueError(f"not a standard split: {', '.join(unknown)} (standard: "
                         f"{', '.join(STANDARD_SPLITS)})")
    split_dir = Path(split_dir).expanduser()
    base = splits_url()
    jobs = [(f"{base}/{LICENSE_SOURCE}", split_dir / LICENSE_NAME, LICENSE_SHA256)]
    jobs += [(f"{base}/splits/{name}", split_dir / name, sha)
             for name, sha in SPLIT_FILES.items() if name.split("/")[0] in splits]
    written = []
    for url, dest, sha in jobs:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if _fetch_checked(url, dest, sha):
            written.append(dest)
    return written


def split_is_missing(split_dir: PathLike, split: str) -> bool:
    """Whether the standard ``split`` lacks any of its files in ``split_dir``."""
    return any(not (Path(split_dir) / name).is_file() for name in SPLIT_FILES
               if name.split("/")[0] == split)


def ensure_standard_split(split_dir: PathLike, split: str) -> List[Path]:
    """Fetches ``split`` into ``split_dir`` when it is a standard split with a file missing.

    Returns:
        The files written (none for a complete or a non-standard split).
    """
    if split not in STANDARD_SPLITS or not split_is_missing(split_dir, split):
        return []
    return fetch_standard_splits(split_dir, [split])
