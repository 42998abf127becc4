"""What the prediction and evaluation tools share: a plain-text progress bar on stderr, and
their flags listed by ``--help``."""

import sys
import time
from typing import Iterable, Optional, TextIO


class ProgressBar:
    """``\\r[#######.............]  35/100 images  4.2/s`` redrawn in place on ``stream``.

    Args:
        total: how many items are expected (None or 0 when unknown: no bar, just a count).
        unit: what the items are called.
        width: characters of the bar.
    """

    def __init__(self, total: Optional[int], unit: str = "images", width: int = 30,
                 stream: Optional[TextIO] = None):
        self.total = total or 0
        self.unit = unit
        self.width = width
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.perf_counter()

    def line(self) -> str:
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        if self.total:
            filled = min(self.width, self.width * self.done // self.total)
            bar = "#" * filled + "." * (self.width - filled)
            return f"[{bar}] {self.done:>{len(str(self.total))}}/{self.total} {self.unit}  " \
                   f"{rate:.1f}/s"
        return f"{self.done} {self.unit}  {rate:.1f}/s"

    def update(self, count: int = 1) -> None:
        self.done += count
        print("\r" + self.line(), end="", file=self.stream, flush=True)

    def close(self) -> None:
        print(file=self.stream, flush=True)


def show_in_help(flag_values, names: Iterable[str]) -> None:
    """Lists the named flags under the running script in ``--help`` (absl shows only the main
    module's flags there, and the tools define theirs in ``monodepth_tf.cli``)."""
    for name in names:
        flag_values.register_key_flag_for_module(sys.argv[0], flag_values[name])
