"""Installs monodepth_tf; metadata and dependencies live in setup.cfg."""
from setuptools import setup

# Each bin/<tool> script has a console entry point of the same purpose, so the tools also work
# after `pip install` (without the repository's bin/ folder on the PATH).
TOOLS = {
    "train": "train",
    "evaluate_depth": "evaluate_depth",
    "evaluate_pose": "evaluate_pose",
    "predict": "predict",
    "export": "export",
    "convert_weights": "convert_weights",
    "export_gt_depth": "export_gt_depth",
    "make_synthetic_kitti": "make_synthetic_kitti",
    "check_data": "check_data",
    "show_sample": "show_sample",
}

setup(
    entry_points={
        "console_scripts": [
            f"monodepth_{tool}=monodepth_tf.cli.{module}:run" for tool, module in TOOLS.items()
        ]
    }
)
