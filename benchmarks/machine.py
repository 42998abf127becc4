"""What a benchmark row records about the machine it ran on (these machines change between
sessions: a figure means something only with its CPU, date and load)."""

import os
import platform
import time
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name, its family and model numbers (a cloud machine's name can be just
    "AMD EPYC": family 25 is Zen 3/4, 26 is Zen 5) and the cores this process may use, e.g.
    "AMD EPYC (family 26, model 2), 2 cores"."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return f"{name}, {len(os.sched_getaffinity(0))} cores"


def machine_fields() -> dict:
    """The fields every result row carries: date, CPU and the 1-minute load average."""
    return dict(date=time.strftime("%Y-%m-%d"), cpu=cpu_model(),
                load_average=round(os.getloadavg()[0], 2))
