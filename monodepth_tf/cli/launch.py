"""Starts a command-line tool with TensorFlow's start-up chatter held back.

Every ``bin/<tool>`` script and every ``monodepth_<tool>`` console entry point comes here: the
tool's module (``monodepth_tf.cli.<tool>``, whose imports load TensorFlow) is imported inside
:func:`monodepth_tf.cli.quiet.quiet_import`, then its ``run()`` is called. This module,
``quiet`` and ``help`` use the standard library and absl only, and the package root loads
nothing on import, so no TensorFlow line can come out before the filter is in place. ``--verbose`` or
``MONODEPTH_VERBOSE=1`` shows everything.
"""

import importlib

from monodepth_tf.cli.help import install_tool_help
from monodepth_tf.cli.quiet import quiet_import

TOOLS = ("train", "convert_weights", "check_data", "export_gt_depth", "make_synthetic_kitti",
         "show_sample", "evaluate_depth", "evaluate_pose", "predict", "export", "download_kitti")


def define_verbose_flag() -> None:
    """``--verbose``, which every tool accepts (read by :func:`quiet_import` from ``sys.argv``,
    and by tools that also quiet TensorFlow's Python log); defined once per process."""
    from absl import flags

    if "verbose" not in flags.FLAGS:
        flags.DEFINE_bool("verbose", False, "Show TensorFlow's start-up log (device probing, "
                          "oneDNN notices), hidden otherwise; or MONODEPTH_VERBOSE=1.")


def launch(tool: str) -> None:
    """Imports ``monodepth_tf.cli.<tool>`` quietly and runs it (absl parses ``sys.argv``)."""
    if tool not in TOOLS:
        raise ValueError(f"no tool {tool!r}; the tools are {', '.join(TOOLS)}")
    with quiet_import():
        module = importlib.import_module(f"monodepth_tf.cli.{tool}")
    define_verbose_flag()
    install_tool_help(module.__doc__, getattr(module, "HELP_GROUPS", {}))
    module.run()


def _entry_point(tool: str):
    def main() -> None:
        launch(tool)

    main.__name__ = main.__qualname__ = tool
    main.__doc__ = f"The console entry point monodepth_{tool}: runs bin/{tool}'s tool."
    return main


# One function per tool, named after it, for setup.py's console entry points
# (``monodepth_train = monodepth_tf.cli.launch:train``).
globals().update({tool: _entry_point(tool) for tool in TOOLS})
