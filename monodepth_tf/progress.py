"""The one progress bar of the package: ``[#####.....]`` drawn in place on a terminal.

:class:`ProgressBar` counts items (the prediction and evaluation tools, training steps);
:func:`bar` is its drawing, also used by the download progress
(:class:`monodepth_tf.download.ByteProgress`). A leaf module: it imports nothing of the package.
"""

import sys
import time
from typing import Optional, TextIO


def bar(done: int, total: int, width: int) -> str:
    """``[#####.....]``: ``width`` characters, filled in proportion to ``done / total``."""
    filled = min(width, width * done // max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}]"


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
            return f"{self.counter()} {self.unit}  {rate:.1f}/s"
        return f"{self.done} {self.unit}  {rate:.1f}/s"

    def counter(self) -> str:
        """``[#####.....]  35/100``: the bar and the count (a known total only)."""
        return f"{bar(self.done, self.total, self.width)} " \
               f"{self.done:>{len(str(self.total))}}/{self.total}"

    def update(self, count: int = 1, text: Optional[str] = None) -> None:
        """Counts ``count`` more items and redraws: :meth:`line`, or ``text`` when given."""
        self.done += count
        self.draw(self.line() if text is None else text)

    def draw(self, text: str) -> None:
        """Redraws the line in place as ``text``."""
        print("\r" + text, end="", file=self.stream, flush=True)

    def close(self) -> None:
        print(file=self.stream, flush=True)
