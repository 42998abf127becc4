"""``--help`` for the command-line tools: the tool's own flags, grouped, with their defaults.

absl's ``--help`` lists only the flags that the ``__main__`` module defines; ours are defined
by the package (``bin/<tool>`` only launches it), so absl would show none, and ``--helpfull``
buries them among absl's and TensorFlow's own. :func:`install_tool_help` replaces ``--help``
(and ``-?``, ``--helpshort``) with a listing of the flags that ``monodepth_tf`` modules define,
in the groups the tool's module names in ``HELP_GROUPS`` (``{title: [flag names]}``; a group may
also name one of SHARED_FLAGS); flags in no group come last under "Other options" (all under "Options" for a tool without groups).
``--helpfull`` is absl's, unchanged.
"""

import sys
import textwrap
from typing import Dict, List, Sequence

from absl import app, flags

PACKAGE = "monodepth_tf"
# absl flags that our tools read as their own (absl.logging defines --log_dir; bin/train
# writes its runs there, as the original does)
SHARED_FLAGS = ("log_dir",)
WIDTH = 100


def tool_flags(flag_values: flags.FlagValues,
               groups: Dict[str, Sequence[str]]) -> Dict[str, flags.Flag]:
    """The flags the package defines (by any ``monodepth_tf`` module), plus the SHARED_FLAGS
    that the tool's groups name, by name."""
    found = {}
    for module, module_flags in flag_values.flags_by_module_dict().items():
        if module.startswith(PACKAGE):
            found.update({flag.name: flag for flag in module_flags})
    named = {name for names in groups.values() for name in names}
    found.update({name: flag_values[name] for name in SHARED_FLAGS
                  if name in named and name in flag_values})
    return found


def describe_flag(flag: flags.Flag) -> str:
    """One flag's entry: ``--name`` (``--[no]name`` for booleans), its help and its default,
    wrapped to WIDTH columns."""
    boolean = isinstance(flag, flags.BooleanFlag)
    name = f"--[no]{flag.name}" if boolean else f"--{flag.name}"
    default = flag.default
    if isinstance(default, (list, tuple)):
        default = ",".join(str(item) for item in default)
    shown = "none" if default in (None, "") else str(default).lower() if boolean else default
    text = flag.help
    if not (shown == "none" and "default" in text):  # the help says what an unset flag does
        text += f" (default: {shown})"
    body = textwrap.fill(text, WIDTH, initial_indent=" " * 6,
                         subsequent_indent=" " * 6)
    return f"  {name}\n{body}"


def format_help(doc: str, flag_values: flags.FlagValues,
                groups: Dict[str, Sequence[str]]) -> str:
    """The whole ``--help`` text: the tool's docstring, then each group of its flags (names
    sorted within a group), then the flags in no group."""
    own = tool_flags(flag_values, groups)
    grouped = {name for names in groups.values() for name in names}
    lines: List[str] = [doc.strip(), ""]
    rest = "Other options" if groups else "Options"
    for title, names in list(groups.items()) + [(rest, set(own) - grouped)]:
        present = sorted(name for name in names if name in own)
        if present:
            lines.append(f"{title}:")
            lines.extend(describe_flag(own[name]) for name in present)
            lines.append("")
    lines.append("absl's and TensorFlow's own flags: --helpfull")
    return "\n".join(lines) + "\n"


class ToolHelpFlag(flags.BooleanFlag):
    """A ``--help`` that prints :func:`format_help` for one tool and exits with status 0."""

    def __init__(self, name: str, short_name, doc: str, groups: Dict[str, Sequence[str]]):
        super().__init__(name, False, "show this tool's flags", short_name=short_name,
                         allow_hide_cpp=True)
        self._doc = doc
        self._groups = groups

    def parse(self, argument) -> None:
        if self._parse(argument):
            sys.stdout.write(format_help(self._doc, flags.FLAGS, self._groups))
            sys.stdout.flush()
            sys.exit(0)


def install_tool_help(doc: str, groups: Dict[str, Sequence[str]],
                      flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Replaces absl's ``--help``/``-?`` and ``--helpshort`` by :class:`ToolHelpFlag`
    (absl's own help flags are defined first, so that ``app.run`` keeps ours)."""
    app.define_help_flags()
    for name, short_name in (("help", "?"), ("helpshort", None)):
        for key in (name, short_name):
            if key in flag_values:
                delattr(flag_values, key)
        flag_values[name] = ToolHelpFlag(name, short_name, doc or "", groups)
