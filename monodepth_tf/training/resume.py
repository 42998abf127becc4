"""Resuming a run: the options of the command against those the run was started with.

A run folder holding a checkpoint is resumed by the same command. Before any data loads or
graph builds, :func:`check_resume` compares the command's options with the run's ``opt.json``
by :data:`~monodepth_tf.training.options.RESUME_RULES`: an option that changes what the
checkpoint means (the feed size, the batch size, the frames, the loss, the learning rate, the
starting weights ...) refuses the resume, naming each difference and how to start a new run;
the others (where the run ends, what it logs and saves ...) are taken, said in the log and
recorded by :func:`record_resume`: ``opt.json`` is rewritten atomically and the change appended
to ``opt_history.jsonl``. An ``opt.json`` written before an option existed lacks its key: the
option's default is assumed (and said); a key no option has any more is ignored (and said).
"""

import dataclasses
import datetime
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from monodepth_tf.training.options import (FIXED, MAY_CHANGE, PATH_OPTIONS, RESUME_RULES,
                                           OptionsError, TrainOptions)

OPTIONS_FILE = "opt.json"
HISTORY_FILE = "opt_history.jsonl"
# tf.train.CheckpointManager's state file, in the run's checkpoints/ folder
CHECKPOINT_STATE = Path("checkpoints") / "checkpoint"


@dataclasses.dataclass(frozen=True)
class ResumeCheck:
    """What a resumed run changes, found by :func:`compare_with_run`.

    Attributes:
        changed: ``{option: (the run's value, the command's value)}`` of the options that may
            change (``MAY_CHANGE``) and do.
        notes: what was assumed: options the run's opt.json lacks (their defaults taken) and
            keys of it that no option has any more (ignored).
    """

    changed: Dict[str, Tuple[Any, Any]]
    notes: Tuple[str, ...] = ()

    def messages(self) -> List[str]:
        """The lines to log: ``resuming with --max_steps 10 (was 5)``, then the notes."""
        return [f"resuming with --{name} {flag_value(new)} (was {flag_value(old)})"
                for name, (old, new) in self.changed.items()] + list(self.notes)


def flag_value(value: Any) -> str:
    """A value as it is written on the command line (lists comma-separated, '' for empty)."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "''" if value == "" else str(value)


def comparable(name: str, value: Any) -> Any:
    """``value`` of option ``name`` as compared: lists as tuples, paths absolute."""
    if isinstance(value, list):
        return tuple(value)
    if name in PATH_OPTIONS and value:
        return os.path.abspath(os.path.expanduser(value))
    return value


def compare_with_run(options: TrainOptions, saved: Dict[str, Any],
                     run_dir: Path) -> ResumeCheck:
    """Compares the command's ``options`` with the ``saved`` opt.json of the run at
    ``run_dir``.

    Raises:
        OptionsError: an option fixed by :data:`RESUME_RULES` differs; the message lists each
            difference (``--batch_size: run has 2, command gives 4``) and how to start a new
            run instead.
    """
    defaults, refused, changed, notes = TrainOptions(), [], {}, []
    for name in (field.name for field in dataclasses.fields(TrainOptions)):
        rule = RESUME_RULES[name][0]
        new, old = getattr(options, name), saved.get(name, getattr(defaults, name))
        was = flag_value(old)
        if name not in saved:
            was += " (the default: its opt.json predates the option)"
            notes.append(f"the run's {OPTIONS_FILE} has no --{name} (an option added since): "
                         f"taken as its default {flag_value(old)}")
        if comparable(name, old) == comparable(name, new):
            continue
        if rule == FIXED:
            refused.append(f"  --{name}: run has {was}, command gives {flag_value(new)} "
                           f"({RESUME_RULES[name][1]})")
        elif rule == MAY_CHANGE:
            changed[name] = (old, new)
    notes += [f"the run's {OPTIONS_FILE} has --{name}, no longer an option: ignored"
              for name in saved if name not in RESUME_RULES]
    if refused:
        raise OptionsError(
            f"cannot resume the run in {run_dir}: these options differ from its "
            f"{OPTIONS_FILE} and would change what its checkpoint means:\n"
            + "\n".join(refused) + "\nGive the run's values to resume it, or start a new run: "
            f"a new --model_name, or delete {run_dir}")
    return ResumeCheck(changed, tuple(notes))


def read_run_options(run_dir: Path) -> Optional[Dict[str, Any]]:
    """The run's opt.json as a dict, None when there is none."""
    path = Path(run_dir) / OPTIONS_FILE
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
    except ValueError as error:
        raise OptionsError(f"{path} is not valid JSON ({error}): restore it, or start a new "
                           f"run (a new --model_name, or delete {run_dir})") from None
    if not isinstance(saved, dict):
        raise OptionsError(f"{path} does not hold options (a JSON object)")
    return saved


def check_resume(options: TrainOptions, run_dir: Path) -> Optional[ResumeCheck]:
    """When ``run_dir`` holds a checkpoint (the run will be resumed), the command's options
    against the run's (:func:`compare_with_run`); None for a new run. Reads files only.

    A checkpointed run without opt.json (written by a version that had none) cannot be
    compared: every option is taken as given, and said so.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT_STATE).is_file():
        return None
    saved = read_run_options(run_dir)
    if saved is None:
        return ResumeCheck({}, (f"the run has no {OPTIONS_FILE}: the command's options are "
                                "taken as they are, unchecked",))
    return compare_with_run(options, saved, run_dir)


def write_options(run_dir: Path, options: TrainOptions) -> Path:
    """Writes ``opt.json`` atomically (a temporary sibling renamed into place)."""
    path = Path(run_dir) / OPTIONS_FILE
    text = json.dumps(dataclasses.asdict(options), indent=2) + "\n"
    handle, staging = tempfile.mkstemp(prefix=f".{OPTIONS_FILE}.", dir=run_dir)
    try:
        with os.fdopen(handle, "w") as staged:
            staged.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o666 & ~umask)  # mkstemp makes the file private
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


def record_resume(run_dir: Path, options: TrainOptions, check: ResumeCheck, step: int) -> None:
    """Records a resume that changed or assumed anything: a line of ``opt_history.jsonl``
    (when, at which step, each change as ``[was, now]``, the notes), then ``opt.json``
    rewritten with the command's options."""
    if not check.changed and not check.notes:
        return
    record = {"resumed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                  timespec="seconds"),
              "step": step, "changed": {k: list(v) for k, v in check.changed.items()},
              "notes": list(check.notes)}
    with open(Path(run_dir) / HISTORY_FILE, "a") as history:
        history.write(json.dumps(record) + "\n")
    write_options(run_dir, options)
