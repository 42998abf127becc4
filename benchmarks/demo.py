"""The set-up demo on every seed: does ``bin/train`` (no data flags) learn, and how long does it
take? (Issue 14: best val abs_rel at most 0.5x the untrained network's for the README's
``bin/train``, at most 0.7x for ``bin/train --mode=mono``, each in at most 6 minutes on a
2-core machine, for seeds 0, 1 and 2.)

    python benchmarks/demo.py [--modes mono_stereo,mono] [--seeds 0,1,2]
                              [--workdir /tmp/demo_bench] [--json results.jsonl]

Runs the command as a user would (``bin/train [--mode=mono] --seed S``, HOME and the log
folder under ``--workdir``, so each run generates its own world as the first run on a fresh
machine does) and reads the run's ``metrics.jsonl``: the untrained network's score (epoch -1)
and the best after it. The wall time includes the world's generation, building the networks,
every validation and the demo picture. Prints one row per run and, with ``--json``, appends
the same as JSON lines with the run's CPU seconds (all threads), the date, the CPU and the
load average before and after.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import cpu_model  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# the README's bound on best / untrained val abs_rel per mode
TARGETS = {"mono_stereo": 0.5, "mono": 0.7, "stereo": 0.5}
MINUTES = 6.0


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished children (on a shared machine
    the wall time depends on the other processes, the CPU time much less)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_demo(mode: str, seed: int, workdir: Path) -> dict:
    """One demo run: its wall time, untrained and best val abs_rel, and the ratio."""
    home = workdir / f"{mode}_seed{seed}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    command = [sys.executable, str(PROJECT_ROOT / "bin" / "train"), "--seed", str(seed)]
    if mode != "mono_stereo":  # the README's bin/train is mono_stereo
        command.append(f"--mode={mode}")
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_HOME", "MONODEPTH_VERBOSE")}
    env["HOME"] = str(home)
    load_before = os.getloadavg()[0]
    cpu_before = children_cpu_seconds()
    start = time.perf_counter()
    result = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu = children_cpu_seconds() - cpu_before
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    lines = (home / "tmp" / "mdp" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    untrained = records[0]["abs_rel"]
    best = min(records[1:], key=lambda r: r["abs_rel"])
    ratio = best["abs_rel"] / untrained
    return dict(mode=mode, seed=seed, untrained_abs_rel=round(untrained, 4),
                best_abs_rel=round(best["abs_rel"], 4), best_step=best["step"],
                ratio=round(ratio, 3), target=TARGETS[mode],
                learned=bool(ratio <= TARGETS[mode]), wall_s=round(wall, 1), cpu_s=round(cpu),
                within_time=bool(wall <= MINUTES * 60),
                load_average=[round(load_before, 2), round(os.getloadavg()[0], 2)],
                date=time.strftime("%Y-%m-%d"), cpu=cpu_model())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="mono_stereo,mono")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workdir", default="/tmp/demo_bench")
    parser.add_argument("--json", help="append the rows to this JSON-lines file")
    args = parser.parse_args()
    modes = args.modes.split(",")
    for mode in modes:
        if mode not in TARGETS:
            sys.exit(f"--modes: {mode!r} is not one of {', '.join(TARGETS)}")
    print(f"{'mode':12} {'seed':>4} {'untrained':>9} {'best':>6} {'step':>5} {'ratio':>6} "
          f"{'target':>6} {'wall':>7} {'CPU s':>6}")
    for mode in modes:
        for seed in (int(s) for s in args.seeds.split(",")):
            row = run_demo(mode, seed, Path(args.workdir))
            print(f"{mode:12} {seed:4d} {row['untrained_abs_rel']:9.3f} "
                  f"{row['best_abs_rel']:6.3f} {row['best_step']:5d} {row['ratio']:5.2f}x "
                  f"{row['target']:5.1f}x {row['wall_s'] / 60:6.1f}m {row['cpu_s']:6d}",
                  flush=True)
            if args.json:
                with open(args.json, "a") as out:
                    out.write(json.dumps(row) + "\n")
    shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
