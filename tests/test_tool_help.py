"""``bin/<tool> --help`` lists the tool's own flags (issue 15: absl's help showed none of them),
grouped, with defaults; checked against absl's ``--helpfull``, which lists every flag under the
module that defines it."""

import re
import subprocess
import sys

import pytest

from tests.helpers import PROJECT_ROOT
from monodepth_tf.cli.launch import TOOLS


def run_tool(tool, *args):
    """(exit code, stdout) of ``bin/<tool> args`` with this interpreter."""
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / tool), *args],
                            capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    return result.returncode, result.stdout


def package_flags_in_helpfull(text):
    """The flag names absl's --helpfull lists under monodepth_tf modules."""
    names, ours = set(), False
    for line in text.splitlines():
        header = re.match(r"^(\S.*):$", line)
        if header:
            ours = header.group(1).startswith("monodepth_tf")
        elif ours:
            flag = re.match(r"^  --(?:\[no\])?(\w+)", line)
            if flag:
                names.add(flag.group(1))
    return names


def listed_flags(text):
    """``{name: its entry}`` of the flags a --help text lists."""
    entries = re.split(r"\n(?=  --)", text)
    return {re.match(r"  --(?:\[no\])?(\w+)", e).group(1): e for e in entries[1:]}


@pytest.mark.parametrize("tool", TOOLS)
def test_help_lists_every_flag_of_the_tool_with_its_default(tool):
    code, text = run_tool(tool, "--help")
    assert code == 0, text
    _, full = run_tool(tool, "--helpfull")
    expected = package_flags_in_helpfull(full)
    assert expected, "--helpfull lists no monodepth_tf flag"
    listed = listed_flags(text)
    assert set(listed) - {"log_dir"} == expected
    for name, entry in listed.items():
        assert "default" in entry, entry
    assert "--tpu" not in text and "--helpfull" in text  # absl's and TensorFlow's stay out
    assert text.startswith(f"bin/{tool}:")  # the tool's docstring comes first


def test_train_help_groups_the_flags_and_documents_log_dir():
    code, text = run_tool("train", "--help")
    assert code == 0
    titles = re.findall(r"^(\S[^\n]*):$", text, re.MULTILINE)
    assert titles[-5:] == ["Data", "Networks", "Loss", "Optimization",
                           "Run folder, logs and checkpoints"]
    listed = listed_flags(text)
    assert "(default: 12)" in listed["batch_size"]
    assert "(default: 0.0001)" in listed["learning_rate"]
    assert "--[no]use_stereo" in listed["use_stereo"]
    # absl.logging defines --log_dir: the tool's help says what training does with it
    assert "Where runs are written" in listed["log_dir"]
    assert text.index("--batch_size") > text.index("Optimization:")


def test_predict_help_groups_the_point_cloud_flags():
    code, text = run_tool("predict", "--help")
    assert code == 0
    titles = re.findall(r"^(\S[^\n]*):$", text, re.MULTILINE)
    assert titles[-4:] == ["Input and model", "Outputs", "Point clouds", "Other options"]
    section = text[text.index("Point clouds:"):text.index("Other options:")]
    assert sorted(re.findall(r"^  --(?:\[no\])?(\w+)", section, re.MULTILINE)) == \
        ["depth_scale", "intrinsics", "max_depth", "point_cloud"]
    assert "KITTI calib_cam_to_cam.txt" in listed_flags(text)["intrinsics"]
