"""Keeps TensorFlow's C++ start-up chatter out of a tool's output (standard library only).

TensorFlow 2.21 logs, while its libraries load, lines such as ``oneDNN custom operations are
on``, ``Could not find cuda drivers`` and absl's ``All log messages before
absl::InitializeLog() ...`` straight to file descriptor 2, before ``TF_CPP_MIN_LOG_LEVEL`` is
read; later ones (``failed call to cuInit``) obey ``TF_CPP_MIN_LOG_LEVEL``. A launcher in
``bin/`` loads this file by its path (importing the package would load TensorFlow first) and
imports the tool inside :func:`quiet_import`. ``--verbose`` on the command line or
``MONODEPTH_VERBOSE=1`` in the environment shows everything.
"""

import contextlib
import os
import re
import sys
import tempfile

# C++ log lines: severity letter, MMDD, time (before absl is initialized, the seconds field
# holds the Unix time: ``I0000 00:00:1796230229.680950``), thread id, file:line].
CPP_LOG_LINE = re.compile(r"^[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.+-]+:\d+\] ")
ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"


def verbose_requested(argv, environ=os.environ) -> bool:
    """Whether the user asked to see TensorFlow's log: ``--verbose`` (or ``--verbose=true``)
    in ``argv`` or ``MONODEPTH_VERBOSE`` set to anything but empty or 0."""
    flag = any(arg in ("--verbose", "--verbose=true", "--verbose=1") for arg in argv)
    return flag or environ.get("MONODEPTH_VERBOSE", "0") not in ("", "0")


def is_startup_chatter(line: str) -> bool:
    """An info or warning line of TensorFlow's C++ logging, or absl's banner before it."""
    return bool(CPP_LOG_LINE.match(line)) or line.startswith(ABSL_BANNER)


@contextlib.contextmanager
def quiet_import(argv=None):
    """Within it, what is written to file descriptor 2 is held back; on leaving, every line
    that is not C++ start-up chatter is written to stderr (so errors still show). Also sets
    ``TF_CPP_MIN_LOG_LEVEL=3`` unless it is set already. Does nothing when
    :func:`verbose_requested`."""
    if verbose_requested(sys.argv[1:] if argv is None else argv):
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode(errors="replace").splitlines(True)
                    if not is_startup_chatter(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
