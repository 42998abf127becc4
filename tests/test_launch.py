"""The tools' start: bin/ scripts and console entry points go through monodepth_tf.cli.launch,
which runs a tool only when asked (never in a spawned worker) and keeps TensorFlow's start-up
log out of what the user sees."""

import ast
import os
import subprocess
import sys

import pytest

from monodepth_tf.cli.launch import TOOLS
from monodepth_tf.cli.quiet import is_startup_chatter
from tests.helpers import PROJECT_ROOT

SCRIPTS = sorted(p.name for p in (PROJECT_ROOT / "bin").iterdir() if p.name != "test")


def setup_tools():
    """The TOOLS list of setup.py, read without running it."""
    tree = ast.parse((PROJECT_ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and node.targets[0].id == "TOOLS":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no TOOLS list")


def test_every_script_is_a_tool_with_an_entry_point():
    assert sorted(TOOLS) == SCRIPTS == sorted(setup_tools())
    setup = (PROJECT_ROOT / "setup.py").read_text()
    assert "monodepth_{tool}=monodepth_tf.cli.launch:{tool}" in setup
    import monodepth_tf.cli.launch as launch

    for tool in TOOLS:
        assert callable(getattr(launch, tool)) and getattr(launch, tool).__name__ == tool


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_do_nothing_when_imported_by_a_worker_process(script):
    """multiprocessing's spawn imports the parent's main script as ``__mp_main__`` in every
    child: a script must start its tool only as ``__main__``, and importing it must not load
    TensorFlow (so a worker starts fast)."""
    path = PROJECT_ROOT / "bin" / script
    child = ("import runpy, sys; sys.argv = ['-c', '--multiprocessing-fork']; "
             f"namespace = runpy.run_path({str(path)!r}, run_name='__mp_main__'); "
             "print(namespace['launch'].__module__, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["monodepth_tf.cli.launch", "False"]
    assert f'launch("{script}")' in path.read_text()


def test_unknown_tool_is_refused():
    from monodepth_tf.cli.launch import launch

    with pytest.raises(ValueError, match="no tool 'trian'"):
        launch("trian")


@pytest.mark.parametrize("script", ["train", "export", "evaluate_depth"])
def test_help_shows_no_tensorflow_start_up_log(script):
    """``--help`` imports the tool (bin/train: and with it TensorFlow); its output holds the
    tool's flags and none of TensorFlow's C++ lines (oneDNN, CUDA probing, absl's banner),
    which --verbose shows."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                              "MONODEPTH_VERBOSE")}
    quiet = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / script), "--help"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stdout.startswith(f"bin/{script}:")  # the flags: tests/test_tool_help.py
    assert not quiet.stderr, quiet.stderr[-2000:]
    lines = (quiet.stdout + quiet.stderr).splitlines()
    assert not [line for line in lines if is_startup_chatter(line)], lines[:5]
    assert not [line for line in lines if ("oneDNN" in line or "cuda" in line.lower())
                and "--verbose" not in line and "start-up log" not in line]
    if script == "train":  # the others import TensorFlow only once they work
        loud = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / script), "--help",
                               "--verbose"], capture_output=True, text=True, timeout=300,
                              env=env)
        assert any(is_startup_chatter(line) for line in loud.stderr.splitlines()), \
            loud.stderr[-500:]
