"""What every command-line tool shares: how it reports a user's mistake."""

import os
import sys

from absl import app


def run_tool(main, flags_parser=None) -> None:
    """Runs an absl ``main``; bad input (a ValueError or OSError raised by the library, whose
    messages name the file or flag at fault) ends the tool with that message and exit code 2
    instead of a traceback. Set MONODEPTH_DEBUG=1 to see the traceback. ``flags_parser``:
    absl's ``app.run`` argument (argv -> the arguments left after parsing flags)."""

    def guarded(argv):
        try:
            return main(argv)
        except (ValueError, OSError) as error:
            if os.environ.get("MONODEPTH_DEBUG"):
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    if flags_parser is None:
        app.run(guarded)
    else:
        app.run(guarded, flags_parser=flags_parser)
