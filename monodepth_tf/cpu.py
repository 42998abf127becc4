"""What the CPU under the process can do, as Linux reports it (without TensorFlow)."""

from pathlib import Path
from typing import List, Optional


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> Optional[List[str]]:
    """The CPU's feature flags as Linux lists them, or None where they cannot be read."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return line.split(":", 1)[1].split()
    return None
