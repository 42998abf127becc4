"""Train and val lists of a folder dataset: made by sequence, written where
``--split_dir``/``--split`` read them again, or read from there; the data a training run opens."""

import dataclasses
import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from monodepth_tf.data.check import raise_on_problems, split_problems
from monodepth_tf.data.errors import DataError
from monodepth_tf.data.folder.layout import FolderLayout, FolderOptions
from monodepth_tf.data.frames import FrameId, frame_key
from monodepth_tf.data.splits import SplitEntry, read_split

PathLike = Union[str, Path]
VAL_FRACTION = 0.1
SPLIT_NAME = "folder"
log = logging.getLogger(__name__)


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


def open_folder_data(data_path: PathLike, frame_ids: Sequence[FrameId], run_dir: Path,
                     options: FolderOptions = FolderOptions(),
                     split_dir: Optional[PathLike] = None, split: str = SPLIT_NAME
                     ) -> Tuple[FolderLayout, List[SplitEntry], List[SplitEntry]]:
    """``(layout, train, val)`` a training run reads from a folder dataset: the video cache in
    ``DIR/.frames`` (``<run_dir>/frames`` when DIR is read-only) unless ``options.cache_dir``
    says otherwise, the split read from ``split_dir/split`` when ``split_dir`` is given, else
    made by :func:`make_splits`; either way written to ``<run_dir>/splits/<split>`` (``folder``
    when made), so that ``--split_dir=<run_dir>/splits --split=folder`` repeats the run. Every
    file the samples need is checked (one DataError listing every problem).

    Args:
        data_path: DIR.
        frame_ids: the frames every sample needs (offsets, ``"s"``).
        run_dir: the run's folder.
        options: subsampling (and the video cache).
        split_dir, split: the lists to read (``split`` is used only with ``split_dir``).
    """
    root = Path(data_path).expanduser()
    cache = root / ".frames"
    if not (cache.is_dir() and os.access(cache, os.W_OK)) and not os.access(root, os.W_OK):
        cache = run_dir / "frames"
    layout = FolderLayout(root, dataclasses.replace(options,
                                                    cache_dir=options.cache_dir or str(cache)))
    short = layout.too_short(frame_ids)
    if short:
        log.warning("sequence(s) too short for frames %s (no sample): %s",
                    ",".join(frame_key(f) for f in frame_ids), ", ".join(short))
    if split_dir:
        train, val = open_splits(layout, frame_ids, run_dir / "splits", split_dir, split)
        source = f"--split_dir={split_dir} --split={split}"
    else:
        train, val = open_splits(layout, frame_ids, run_dir / "splits")
        source = f"--data_path={root} (split written to {run_dir / 'splits'})"
    problems = split_problems(layout, train, frame_ids, source="train_files.txt")
    problems += split_problems(layout, val, frame_ids, source="val_files.txt")
    raise_on_problems(problems, source)
    return layout, train, val


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
