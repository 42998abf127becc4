"""What a benchmark row records about the machine it ran on (these machines change between
sessions: a figure means something only with its CPU, date and load)."""

import os
import platform
import time
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name and the cores this process may use, e.g. "AMD EPYC 9R14, 2 cores"."""
    name = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {len(os.sched_getaffinity(0))} cores"


def machine_fields() -> dict:
    """The fields every result row carries: date, CPU and the 1-minute load average."""
    return dict(date=time.strftime("%Y-%m-%d"), cpu=cpu_model(),
                load_average=round(os.getloadavg()[0], 2))
