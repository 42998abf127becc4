"""Peak resident memory of a process, and a runner that reports a script's.

    python benchmarks/memory.py [--cpu_clock] SCRIPT [ARGS...]

runs SCRIPT as ``python SCRIPT ARGS`` would, then prints one JSON line, ``{"peak_rss_mb": ...}``:
the high-water mark of the process's resident memory (``VmHWM``). With ``--cpu_clock``, the
script's ``time.perf_counter`` reads CPU seconds (``time.process_time``) instead. Standard
library only: the original's Python runs it too (benchmarks/original.py).

Why not ``resource.getrusage(...).ru_maxrss``: on Linux a process keeps the high-water mark of
the process it was forked from, through ``exec``, so a child of a benchmark that has loaded
TensorFlow reports at least that benchmark's size. ``VmHWM`` in ``/proc/self/status`` counts
from the process's own ``exec``.
"""

import atexit
import json
import os
import resource
import runpy
import sys
import time


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB: ``VmHWM`` (since its ``exec``), or, where
    ``/proc`` is missing, ``ru_maxrss`` (which may include its parent's; see above)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2 ** 20, 1)


def run_script(argv) -> None:
    """Runs ``argv[0]`` as ``__main__`` with ``argv`` as its ``sys.argv`` (its folder first on
    the path, as ``python SCRIPT`` puts it), printing :func:`peak_rss_mb` when this process
    exits (not when a child forked from it does)."""
    if argv and argv[0] == "--cpu_clock":
        time.perf_counter = time.process_time
        argv = argv[1:]
    if not argv:
        sys.exit("usage: " + __doc__.strip().splitlines()[2].strip())
    main_pid = os.getpid()
    atexit.register(lambda: os.getpid() == main_pid and print(
        json.dumps({"peak_rss_mb": peak_rss_mb()}), flush=True))
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    run_script(sys.argv[1:])
