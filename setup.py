"""Installs monodepth_tf; metadata and dependencies live in setup.cfg."""
from setuptools import setup

# Each bin/<tool> script has a console entry point of the same purpose, so the tools also work
# after `pip install` (without the repository's bin/ folder on the PATH); both start through
# monodepth_tf.cli.launch, which keeps TensorFlow's start-up log out of the output.
TOOLS = ["train", "convert_weights", "check_data", "export_gt_depth", "make_synthetic_kitti",
         "show_sample", "evaluate_depth", "evaluate_pose", "predict", "export",
         "download_kitti"]

setup(
    entry_points={
        "console_scripts": [
            f"monodepth_{tool}=monodepth_tf.cli.launch:{tool}" for tool in TOOLS
        ]
    }
)
