"""What the tools share for ``--help``: their flags listed under the running script."""

import sys
from typing import Iterable


def show_in_help(flag_values, names: Iterable[str]) -> None:
    """Lists the named flags under the running script in ``--help`` (absl shows only the main
    module's flags there, and the tools define theirs in ``monodepth_tf.cli``)."""
    for name in names:
        flag_values.register_key_flag_for_module(sys.argv[0], flag_values[name])
