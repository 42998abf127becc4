"""Where a training process's wall time goes: its steps, validations, checkpoints, weight
folders and TensorBoard images.

Every process that trains appends one line to ``timings.jsonl`` in the run folder when it stops
(see :meth:`PhaseTimes.record`), so a resumed run has one line per process. A step's time runs
from the end of whatever came before it (the previous step or a phase) to the end of its log
line: it includes the wait for its batch. The process's first step (tracing the step, filling
the input pipeline) is kept apart from the others, which make the sustained ``samples_per_s``.
"""

import contextlib
import time
from typing import Callable, Dict, Iterator, List, Optional

# One JSON object per training process (see PhaseTimes.record), in the run folder.
TIMINGS_FILE = "timings.jsonl"
# The phases a run times besides its steps, in the order they are reported.
PHASES = ("validation", "checkpoint", "weights", "images")


class PhaseTimes:
    """Wall seconds of a training process, per step and per phase.

    Args:
        batch_size: samples per step (for ``samples_per_s``).
        start_step: the step the process starts at (0, or a resumed run's step).
        clock: seconds, monotonic (``time.perf_counter``; a fake clock in tests).
    """

    def __init__(self, batch_size: int, start_step: int = 0,
                 clock: Callable[[], float] = time.perf_counter):
        self.batch_size, self.start_step = batch_size, start_step
        self._clock = clock
        self._started = self._mark = clock()
        self.first_step_s: Optional[float] = None
        self.steps, self.steps_s = 0, 0.0  # the steps after the first, and their seconds
        self.phases: Dict[str, List[float]] = {name: [] for name in PHASES}

    def step_done(self) -> None:
        """A step has ended: the time since the previous step or phase ended is its own."""
        now = self._clock()
        elapsed, self._mark = now - self._mark, now
        if self.first_step_s is None:
            self.first_step_s = elapsed
        else:
            self.steps += 1
            self.steps_s += elapsed

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Times the ``with`` block as one ``name`` (one of :data:`PHASES`)."""
        started = self._clock()
        try:
            yield
        finally:
            self._mark = self._clock()
            self.phases[name].append(self._mark - started)

    def record(self, end_step: int) -> dict:
        """The process's timings: ``wall_s`` (since it was created), ``first_step_s``,
        ``steps`` and ``steps_s`` (the steps after the first), their ``samples_per_s``, and per
        phase the seconds of each time it ran (``validation_s``: [...], ...), and ``other_s``,
        the wall time in none of them, to the ms."""
        record = {"start_step": self.start_step, "end_step": end_step,
                  "batch_size": self.batch_size,
                  "wall_s": round(self._clock() - self._started, 3),
                  "first_step_s": None if self.first_step_s is None else
                  round(self.first_step_s, 3),
                  "steps": self.steps, "steps_s": round(self.steps_s, 3),
                  "samples_per_s": round(self.steps * self.batch_size / self.steps_s, 3)
                  if self.steps_s > 0 else None}
        record.update({f"{name}_s": [round(s, 3) for s in self.phases[name]]
                       for name in PHASES})
        # the rest: restoring, the gaps between a step's end and the next phase, and any wait
        # that belongs to neither (an epoch's end once stood idle for a minute; pipeline.py)
        accounted = (self.first_step_s or 0.0) + self.steps_s + sum(
            sum(seconds) for seconds in self.phases.values())
        record["other_s"] = round(max(record["wall_s"] - accounted, 0.0), 3)
        return record


def summary_line(record: dict) -> str:
    """``time 84.2 s: first step 12.1 s, 63 steps 60.3 s (4.18 samples/s), validation 2x 5.1 s,
    ...`` for the log."""
    parts = [f"first step {record['first_step_s'] or 0:.1f} s",
             f"{record['steps']} steps {record['steps_s']:.1f} s"
             + (f" ({record['samples_per_s']:.2f} samples/s)" if record["samples_per_s"] else "")]
    parts += [f"{name} {len(record[name + '_s'])}x {sum(record[name + '_s']):.1f} s"
              for name in PHASES if record[name + "_s"]]
    parts.append(f"other {record['other_s']:.1f} s")
    return f"time {record['wall_s']:.1f} s: " + ", ".join(parts)
