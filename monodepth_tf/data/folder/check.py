"""What ``bin/check_data --dataset=folder`` reports: per sequence its kept frames, usable samples
and motion, and every problem with the files the samples need."""

from pathlib import Path
from typing import List, NamedTuple, Sequence, Tuple

from monodepth_tf.data.check import split_problems
from monodepth_tf.data.folder.layout import FolderLayout
from monodepth_tf.data.folder.motion import frame_motion
from monodepth_tf.data.kitti import FrameId, frame_key


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
