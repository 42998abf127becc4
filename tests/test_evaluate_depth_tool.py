"""bin/evaluate_depth: the Eigen protocol on a synthetic world and on a real KITTI frame, checked
against an independent NumPy float64 computation of the protocol over the same predictions."""

import contextlib
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from monodepth_tf.cli.evaluate_depth import EvalArgs, evaluate
from monodepth_tf.synthetic import make_synthetic_kitti
from monodepth_tf.evaluation.depth import EvaluationError
from monodepth_tf.weights.folder import WeightsFolderError
from tests.helpers import (NAMES, PROJECT_ROOT, direct_disparities, numpy_protocol,
                           random_depth_weights)
from tests.zoo_server import closed_port_url

KITTI_DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"


def assert_matches_numpy(record, disps, gts, crop, median_scaling, factor):
    expected, ratios, counts = numpy_protocol(disps, gts, crop, median_scaling, factor)
    got = np.array([record[name] for name in NAMES])
    # float32 (the tool) against float64: continuous metrics to 1e-5; the threshold
    # fractions may differ by a pixel or two crossing 1.25^k, i.e. 2 / valid pixels
    np.testing.assert_allclose(got[:4], expected[:4], rtol=1e-5)
    np.testing.assert_allclose(got[4:], expected[4:], atol=2.0 / counts.min())
    if median_scaling:
        np.testing.assert_allclose(record["ratio_median"], np.median(ratios), rtol=1e-5)
        np.testing.assert_allclose(record["ratio_std"], np.std(ratios / np.median(ratios)),
                                   rtol=1e-4, atol=1e-7)
    return expected


def printed_row(stdout: str) -> np.ndarray:
    row = [line for line in stdout.splitlines() if line.startswith("&")][-1]
    return np.array([float(v) for v in row.rstrip("\\").split("&")[1:]])


# ---- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    summary = make_synthetic_kitti(root, seed=3, num_drives=2, frames_per_drive=10, height=96,
                                   width=320, ext="png", workers=1)
    assert summary.test == 8
    return summary


@pytest.fixture(scope="module")
def gts(world):
    with np.load(world.gt_depths, allow_pickle=True) as data:
        return [np.asarray(m, np.float32) for m in data["data"]]


@pytest.fixture(scope="module")
def test_images(world):
    import cv2
    lines = (world.split_dir / "synthetic" / "test_files.txt").read_text().split("\n")
    images = []
    for line in filter(None, lines):
        folder, index, _ = line.split()
        path = world.root / folder / "image_02" / "data" / f"{int(index):010d}.png"
        images.append(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    return images


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return random_depth_weights(tmp_path_factory.mktemp("w") / "random64", seed=7)


def base_args(world, weights, **changes):
    args = EvalArgs(load_weights_folder=str(weights) if weights else None,
                    data_path=str(world.root),
                    split_dir=str(world.split_dir), eval_split="synthetic", png=True,
                    batch_size=3)
    return EvalArgs(**{**args.__dict__, **changes})


@pytest.fixture(scope="module")
def mono_run(world, weights, tmp_path_factory):
    """One network run, mono, disparities and JSON saved."""
    out = tmp_path_factory.mktemp("mono")
    args = base_args(world, weights, eval_mono=True, save_pred_disps=True, output_dir=str(out),
                     output_json=str(out / "metrics.json"))
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        record = evaluate(args)
    return record, out, stdout.getvalue()


# ---- synthetic world ------------------------------------------------------------------------

def test_mono_network_run_matches_numpy(mono_run, gts, weights, test_images):
    record, out, stdout = mono_run
    disps = np.load(out / "disps_synthetic_split.npy")
    assert disps.shape == (8, 64, 192) and disps.dtype == np.float32
    np.testing.assert_allclose(disps, direct_disparities(weights, test_images), rtol=1e-5,
                               atol=1e-6)
    expected = assert_matches_numpy(record, disps, gts, crop=False, median_scaling=True,
                                    factor=1.0)
    assert json.loads((out / "metrics.json").read_text())["abs_rel"] == record["abs_rel"]
    assert record["num_images"] == 8 and record["garg_crop"] is False
    # the printed table (3 decimals) and ratios, as the original prints them
    np.testing.assert_allclose(printed_row(stdout), expected, atol=5e-4 + 1e-9)
    ratios = numpy_protocol(disps, gts, False, True, 1.0)[1]
    assert f"med: {np.median(ratios):0.3f} | std: {np.std(ratios / np.median(ratios)):0.3f}" \
        in stdout
    assert "abs_rel |   sq_rel |" in stdout


def test_openvino_runtime_scores_its_own_disparities(mono_run, world, weights, gts,
                                                     test_images, tmp_path):
    """--runtime openvino: the network's disparities to float32 rounding, scored as usual."""
    out = tmp_path / "openvino"
    args = base_args(world, weights, eval_mono=True, save_pred_disps=True, output_dir=str(out),
                     runtime="openvino")
    with contextlib.redirect_stdout(io.StringIO()):
        record = evaluate(args)
    disps = np.load(out / "disps_synthetic_split.npy")
    np.testing.assert_allclose(disps, direct_disparities(weights, test_images), rtol=1e-5,
                               atol=1e-6)
    assert_matches_numpy(record, disps, gts, crop=False, median_scaling=True, factor=1.0)
    np.testing.assert_allclose(record["abs_rel"], mono_run[0]["abs_rel"], rtol=1e-4)


def test_ext_disp_to_eval_gives_identical_numbers(mono_run, world):
    record, out, _ = mono_run
    again = evaluate(EvalArgs(ext_disp_to_eval=str(out / "disps_synthetic_split.npy"),
                              split_dir=str(world.split_dir), eval_split="synthetic",
                              eval_mono=True))
    assert [again[n] for n in NAMES + ("ratio_median", "ratio_std")] == \
        [record[n] for n in NAMES + ("ratio_median", "ratio_std")]


def test_stereo_post_processed_run_matches_numpy(world, weights, gts, test_images, tmp_path):
    record = evaluate(base_args(world, weights, eval_stereo=True, post_process=True,
                                save_pred_disps=True, output_dir=str(tmp_path)))
    disps = np.load(tmp_path / "disps_synthetic_split.npy")
    np.testing.assert_allclose(disps, direct_disparities(weights, test_images, True),
                               rtol=1e-5, atol=1e-6)
    assert "ratio_median" not in record and record["scale_factor"] == 5.4
    assert_matches_numpy(record, disps, gts, crop=False, median_scaling=False, factor=5.4)


def test_disabled_median_scaling_with_a_factor(mono_run, world, gts):
    _, out, _ = mono_run
    disps = np.load(out / "disps_synthetic_split.npy")
    record = evaluate(EvalArgs(ext_disp_to_eval=str(out / "disps_synthetic_split.npy"),
                               split_dir=str(world.split_dir), eval_split="synthetic",
                               eval_mono=True, disable_median_scaling=True,
                               pred_depth_scale_factor=30.0))
    assert_matches_numpy(record, disps, gts, crop=False, median_scaling=False, factor=30.0)


@pytest.mark.parametrize("split, crop", [("eigen", True), ("eigen_benchmark", False)])
def test_garg_crop_on_eigen_only(mono_run, world, gts, tmp_path, split, crop):
    _, out, _ = mono_run
    shutil.copytree(world.split_dir / "synthetic", tmp_path / split)
    disps = np.load(out / "disps_synthetic_split.npy")
    record = evaluate(EvalArgs(ext_disp_to_eval=str(out / "disps_synthetic_split.npy"),
                               split_dir=str(tmp_path), eval_split=split, eval_mono=True))
    assert record["garg_crop"] is crop
    assert_matches_numpy(record, disps, gts, crop=crop, median_scaling=True, factor=1.0)
    other = numpy_protocol(disps, gts, not crop, True, 1.0)[0]
    assert abs(record["abs_rel"] - other[0]) > 1e-4  # the crop changes the numbers


# ---- the original's own numbers -----------------------------------------------------------

def test_reproduces_the_originals_eval_npz(reference_dir, tmp_path):
    """The reference's prediction and ground truth, through the tool: the original's ratio and
    seven metrics to 1e-6."""
    with np.load(reference_dir / "eval.npz") as ref:
        ref = {key: ref[key] for key in ref.files}
    (tmp_path / "eigen").mkdir()
    maps = np.empty(1, dtype=object)
    maps[0] = ref["gt"]
    np.savez(tmp_path / "eigen" / "gt_depths.npz", data=maps)
    np.save(tmp_path / "disps.npy", ref["pred_disp"][None])
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        record = evaluate(EvalArgs(ext_disp_to_eval=str(tmp_path / "disps.npy"),
                                   split_dir=str(tmp_path), eval_split="eigen", eval_mono=True))
    np.testing.assert_allclose([record[n] for n in NAMES], ref["errors"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(record["ratio_median"], ref["ratio"], rtol=1e-6)
    assert f"med: {float(ref['ratio']):0.3f} | std: 0.000" in stdout.getvalue()
    np.testing.assert_allclose(printed_row(stdout.getvalue()), ref["errors"], atol=5e-4 + 1e-9)


# ---- a real KITTI frame with the reference weights -----------------------------------------

def test_real_kitti_frame_with_the_reference_weights(kitti_dir, reference_dir, tmp_path):
    import cv2
    split = tmp_path / "splits" / "eigen"
    split.mkdir(parents=True)
    (split / "test_files.txt").write_text(f"{KITTI_DRIVE} 0000000001 l\n")
    with np.load(kitti_dir / "reference" / "gt_depth_2011_09_26_drive_0000_0000000001.npz") \
            as ref:
        gt = ref["cam2"].astype(np.float32)
    maps = np.empty(1, dtype=object)
    maps[0] = gt
    np.savez_compressed(split / "gt_depths.npz", data=maps)
    record = evaluate(EvalArgs(load_weights_folder=str(reference_dir),
                               data_path=str(kitti_dir / "raw"), split_dir=str(tmp_path / "splits"),
                               eval_split="eigen", png=True, eval_mono=True, save_pred_disps=True,
                               output_dir=str(tmp_path)))
    disps = np.load(tmp_path / "disps_eigen_split.npy")
    assert disps.shape == (1, 192, 640) and record["garg_crop"] is True
    image = cv2.cvtColor(cv2.imread(str(kitti_dir / "raw" / KITTI_DRIVE / "image_02" / "data"
                                        / "0000000001.png")), cv2.COLOR_BGR2RGB)
    # eager against compiled float32 at 192x640: this random network amplifies rounding
    # (the reference itself agrees with ours to 6.6e-4 in scaled disparity, see test_predict_tool)
    np.testing.assert_allclose(disps, direct_disparities(reference_dir, [image]), rtol=1e-3)
    expected = assert_matches_numpy(record, disps, [gt], crop=True, median_scaling=True,
                                    factor=1.0)
    assert 0 < expected[0] < 10 and np.isfinite(expected).all()


# ---- bad input ------------------------------------------------------------------------------

def run_tool(*args):
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "evaluate_depth"), *args],
                          capture_output=True, text=True, timeout=300)


def test_mono_or_stereo_is_required(world, weights):
    for choice in ({}, {"eval_mono": True, "eval_stereo": True}):
        with pytest.raises(ValueError, match="--eval_mono and --eval_stereo"):
            evaluate(base_args(world, weights, **choice))


def test_split_without_ground_truth_says_how_to_make_it(world, weights, tmp_path):
    (tmp_path / "eigen").mkdir()
    (tmp_path / "eigen" / "test_files.txt").write_text(f"{KITTI_DRIVE} 1 l\n")
    result = run_tool("--load_weights_folder", str(weights), "--data_path", str(world.root),
                      "--split_dir", str(tmp_path), "--eval_split", "eigen", "--eval_mono")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert str(tmp_path / "eigen" / "gt_depths.npz") in result.stderr
    assert "bin/export_gt_depth" in result.stderr and "--split eigen" in result.stderr


def test_weights_of_another_architecture_name_the_file(world, weights, tmp_path):
    folder = tmp_path / "r34"
    shutil.copytree(weights, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_layers": 34}))
    with pytest.raises(WeightsFolderError, match=str(folder / "encoder.weights.h5")):
        evaluate(base_args(world, folder, eval_mono=True))


def test_saved_disparities_that_do_not_fit(world, tmp_path):
    wrong = tmp_path / "three.npy"
    np.save(wrong, np.ones((3, 64, 192), np.float32))
    with pytest.raises(EvaluationError, match="three.npy holds 3 disparities"):
        evaluate(EvalArgs(ext_disp_to_eval=str(wrong), split_dir=str(world.split_dir),
                          eval_split="synthetic", eval_mono=True))
    text = tmp_path / "ints.npy"
    np.save(text, np.ones((8, 64, 192), np.int32))
    with pytest.raises(ValueError, match="ints.npy holds int32"):
        evaluate(EvalArgs(ext_disp_to_eval=str(text), split_dir=str(world.split_dir),
                          eval_split="synthetic", eval_mono=True))


def test_missing_data_path_and_weights(world, weights):
    with pytest.raises(ValueError, match="--data_path"):
        evaluate(base_args(world, weights, eval_mono=True, data_path=None))
    with pytest.raises(ValueError, match="nowhere does not exist"):
        evaluate(base_args(world, "/nowhere", eval_mono=True))


def test_missing_images_are_named_before_loading_the_network(world, weights):
    with pytest.raises(EvaluationError) as error:
        evaluate(base_args(world, weights, eval_mono=True, png=False))
    message = str(error.value)
    assert "8 of the 8 test images" in message and "--png" in message
    assert str(world.root / "2011_09_26" / "2011_09_26_drive_0002_sync" / "image_02") in message


def test_model_zoo_name(mono_run, world, weights, tmp_path, monkeypatch):
    record, _, _ = mono_run
    monkeypatch.setenv("MONODEPTH_ZOO_DIR", str(tmp_path))
    monkeypatch.setenv("MONODEPTH_ZOO_URL", closed_port_url())  # offline, not in the cache
    name = "monodepth2_resnet18_kitti_mono_640x192"
    with pytest.raises(OSError, match=f"unzip it into {tmp_path} "):
        evaluate(base_args(world, None, eval_mono=True, model_zoo=name))
    (tmp_path / name).symlink_to(weights)
    again = evaluate(base_args(world, None, eval_mono=True, model_zoo=name))
    np.testing.assert_allclose([again[n] for n in NAMES], [record[n] for n in NAMES],
                               rtol=1e-6)
