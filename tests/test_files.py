"""monodepth_tf.files: an output folder that cannot be one is refused before any work, by
every tool that writes one, naming the flag (before: "[Errno 17] File exists" or "Not a
directory" after loading, or a traceback)."""

import os
import subprocess
import sys

import pytest

from monodepth_tf.files import OutputPathError, check_output_folder
from tests.helpers import PROJECT_ROOT


def test_a_missing_folder_is_fine_a_file_is_not(tmp_path):
    assert check_output_folder(tmp_path / "new" / "deeper", "--output_dir") == \
        tmp_path / "new" / "deeper"
    (tmp_path / "taken").write_text("x")
    with pytest.raises(OutputPathError) as error:
        check_output_folder(tmp_path / "taken", "--output_dir")
    assert str(error.value) == (f"--output_dir={tmp_path / 'taken'} is a file: give a folder "
                                "(it is created when missing)")
    with pytest.raises(OutputPathError, match=f"lies inside {tmp_path / 'taken'}, which is a "
                                              "file"):
        check_output_folder(tmp_path / "taken" / "inside", "--export_dir")


def tool_cases(reference_dir, kitti_dir):
    """``(tool, arguments, output flag)``: each with what it needs to start."""
    weights = ["--load_weights_folder", str(reference_dir)]
    return [
        ("convert_weights", ["--pytorch_dir", str(reference_dir)], "--output_dir"),
        ("make_synthetic_kitti", [], "--output_dir"),
        ("export_gt_depth", ["--data_path", str(kitti_dir / "raw")], "--output_dir"),
        ("export", weights, "--export_dir"),
        ("evaluate_depth", [*weights, "--eval_mono"], "--eval_out_dir"),
        ("evaluate_pose", [*weights, "--data_path", str(kitti_dir / "odometry")],
         "--output_dir"),
        ("train", [], "--log_dir"),
    ]


@pytest.mark.parametrize("index", range(7))
def test_every_tool_refuses_an_output_folder_that_is_a_file(tmp_path, reference_dir,
                                                             kitti_dir, index):
    tool, arguments, flag = tool_cases(reference_dir, kitti_dir)[index]
    taken = tmp_path / "taken"
    taken.write_text("a file the user keeps")
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / tool), *arguments,
                             f"{flag}={taken}"], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {flag}={taken} is a file: give a folder (it is created when missing)")
    assert taken.read_text() == "a file the user keeps"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
