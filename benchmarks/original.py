"""The original Monodepth2 (PyTorch), timed beside ours by the benchmarks.

A speed ratio means something only between two numbers from the same run on the same machine
(these machines change between sessions), so no benchmark keeps the original's figures as
constants: with ``--original_python`` (a Python with the original's dependencies, e.g. made by
../shared/bench/setup-original.sh) and ``--original_ref`` (the original's source), each round runs
the original's timing script from ``--original_bench`` (../shared/bench by default) in a child
process, between our own measurements. Without them, the tables show our figures only.
Every row the original's script prints also gets that child's peak resident memory
(``peak_rss_mb``, see benchmarks/memory.py).
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

SHARED = Path(__file__).resolve().parents[2] / "shared"
# runs a script, then prints its process's peak resident memory (standard library only)
PEAK_MEMORY_RUNNER = Path(__file__).resolve().parent / "memory.py"


def add_original_flags(parser) -> None:
    """``--original_python``, ``--original_ref`` and ``--original_bench`` on an argparse
    parser."""
    parser.add_argument("--original_python", help="a Python with the original's dependencies "
                        "(PyTorch); with --original_ref, the original is timed in the same run")
    parser.add_argument("--original_ref", help="the original's source (MONODEPTH2_REF)")
    parser.add_argument("--original_bench", default=str(SHARED / "bench"),
                        help="the folder of the original's timing scripts")


def check_original(args, script: str) -> bool:
    """Whether the original is to be timed; exits with a message naming the flag when the
    settings are incomplete or a path is missing, before any timing starts."""
    if (args.original_python is None) != (args.original_ref is None):
        sys.exit("--original_python and --original_ref go together")
    if args.original_python is None:
        return False
    for flag, path in (("--original_python", Path(args.original_python)),
                       ("--original_ref", Path(args.original_ref) / "trainer.py"),
                       ("--original_bench", Path(args.original_bench) / script)):
        if not path.exists():
            sys.exit(f"{flag}: {path} does not exist")
    return True


def run_original(args, script: str, arguments: List[str], cpu_clock: bool = False) -> List[dict]:
    """The JSON lines that ``script`` (in ``--original_bench``) prints when run by
    ``--original_python`` with ``arguments``, each with the child's ``peak_rss_mb`` (its main
    process: the original's DataLoader workers are processes of their own); ``cpu_clock``: its
    ``time.perf_counter`` reads CPU seconds instead. Exits with the script's error output when
    it fails."""
    path = str(Path(args.original_bench) / script)
    command = [args.original_python, str(PEAK_MEMORY_RUNNER)] + (
        ["--cpu_clock"] if cpu_clock else [])
    output = subprocess.run(command + [path] + arguments, text=True, capture_output=True,
                            env={**os.environ, "MONODEPTH2_REF": args.original_ref})
    if output.returncode != 0:
        sys.exit(f"the original's {script} failed:\n{output.stderr[-3000:]}")
    rows = [json.loads(line) for line in output.stdout.splitlines() if line.startswith("{")]
    peak = [row["peak_rss_mb"] for row in rows if set(row) == {"peak_rss_mb"}]
    return [dict(row, peak_rss_mb=peak[-1]) for row in rows if set(row) != {"peak_rss_mb"}]


def original_step_and_inference(args, mode: str, batch: int, height: int, width: int,
                                steps: int) -> Optional[dict]:
    """The original's training step (``train_step_s``, median of ``steps``), depth
    inference at batch 1 (``infer_ms``) and the process's ``peak_rss_mb`` (the step's, which
    needs more than the inference), or None when the original is not set up."""
    if args.original_python is None:
        return None
    rows = run_original(args, "original_step_and_inference.py",
                        ["--mode", mode, "--batch", str(batch), "--height", str(height),
                         "--width", str(width), "--steps", str(steps)])
    return rows[-1]
