"""The KITTI depth-prediction benchmark: submission PNGs against a NumPy float64 computation of
trunc(clip(5.4 / resized disparity, 0, 80) * 256), the benchmark's test-image layouts, the
eigen -> eigen_benchmark map (hand-made and the shared file against the two split lists), and
bin/evaluate_depth's --eval_split benchmark, --eval_eigen_to_benchmark, --no_eval and
--eval_out_dir."""

import subprocess
import sys
import zipfile

import cv2
import numpy as np
import pytest

from monodepth_tf.cli.evaluate_depth import EvalArgs, evaluate
from monodepth_tf.data.splits import read_split
from monodepth_tf.evaluation.depth import EvaluationError
from monodepth_tf.evaluation.kitti_submission import (benchmark_image_paths, eigen_to_benchmark,
                                                      read_eigen_to_benchmark_ids,
                                                      write_submission)
from tests.helpers import (NAMES, PROJECT_ROOT, bilinear_resize, direct_disparities,
                           numpy_protocol, random_depth_weights)

DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"


def expected_png(disp: np.ndarray) -> np.ndarray:
    """The submission map in float64, before the integer cast: clip(5.4 / disp, 0, 80) * 256
    at 352x1216."""
    with np.errstate(divide="ignore"):
        depth = 5.4 / bilinear_resize(disp, 352, 1216)
    return np.clip(depth, 0, 80) * 256


def read_png(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def assert_pngs_match(folder, disps):
    """Every ``{i:010d}.png`` is uint16 [352, 1216] and equals the float64 value truncated,
    except where float32 resizing puts a value across an integer (then by 1)."""
    for index, disp in enumerate(disps):
        png = read_png(folder / f"{index:010d}.png")
        assert png.dtype == np.uint16 and png.shape == (352, 1216)
        want = np.floor(expected_png(disp))
        diff = np.abs(png.astype(np.float64) - want)
        assert diff.max() <= 1 and np.mean(diff == 0) > 0.999, (diff.max(), np.mean(diff == 0))


# ---- the submission files -------------------------------------------------------------------

def test_submission_pngs_match_numpy_float64(tmp_path):
    rng = np.random.default_rng(0)
    # smooth disparities at a feed-like size: depths from 9 m to 270 m (part clipped at 80)
    coarse = rng.uniform(0.02, 0.6, (3, 4, 6))
    disps = np.stack([cv2.resize(c, (80, 24), interpolation=cv2.INTER_CUBIC) for c in coarse])
    disps = np.clip(disps, 0.02, 0.6).astype(np.float32)
    submission = write_submission(disps, tmp_path / "out")
    assert [p.name for p in submission.files] == [f"{i:010d}.png" for i in range(3)]
    assert_pngs_match(tmp_path / "out", disps)
    clipped = expected_png(disps[0]) >= 80 * 256
    assert 0.05 < clipped.mean() < 0.95  # both regimes are exercised
    assert (read_png(submission.files[0])[clipped] == 20480).all()
    with zipfile.ZipFile(submission.zip_path) as archive:
        assert archive.namelist() == [f"{i:010d}.png" for i in range(3)]
        assert archive.read("0000000002.png") == submission.files[2].read_bytes()


def test_hand_worked_values_truncate_and_clip(tmp_path):
    # 5.4 / 0.5 = 10.8 m -> 2764.8 -> 2764 (truncated, not rounded); 5.4 / 0.25 = 21.6 m ->
    # 5529.6 -> 5529; 5.4 / 0.05 = 108 m -> clipped to 80 -> 20480; 0 -> inf -> 20480
    disps = np.array([[[0.5, 0.5], [0.5, 0.5]], [[0.25, 0.25], [0.25, 0.25]],
                      [[0.05, 0.05], [0.05, 0.05]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
    submission = write_submission(disps, tmp_path, make_zip=False)
    assert submission.zip_path is None
    for path, value in zip(submission.files, (2764, 5529, 20480, 20480)):
        assert (read_png(path) == value).all(), path
    with pytest.raises(ValueError, match="disparity 1 holds NaN"):
        write_submission(np.stack([disps[0], disps[0] * np.nan]), tmp_path / "nan")


# ---- where the test images are read ----------------------------------------------------------

def write_test_images(root, count, seed=0):
    """``<root>/depth_selection/test_depth_prediction_anonymous/image/<i:010d>.png``."""
    folder = root / "depth_selection" / "test_depth_prediction_anonymous" / "image"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        image = rng.integers(0, 256, (88, 304, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"{index:010d}.png"), image[:, :, ::-1])
        images.append(image)
    return folder, images


def write_benchmark_list(split_dir, count):
    (split_dir / "benchmark").mkdir(parents=True, exist_ok=True)
    (split_dir / "benchmark" / "test_files.txt").write_text(
        "".join(f"image {i}\n" for i in range(count)))


def test_test_image_layouts_and_missing_files(tmp_path):
    folder, _ = write_test_images(tmp_path, 3)
    write_benchmark_list(tmp_path / "splits", 3)
    entries = read_split(tmp_path / "splits", "benchmark", "test")
    expected = [folder / f"{i:010d}.png" for i in range(3)]
    for data_path in (tmp_path, tmp_path / "depth_selection",
                      tmp_path / "depth_selection" / "test_depth_prediction_anonymous"):
        assert benchmark_image_paths(data_path, entries) == expected
    (folder / "0000000001.png").unlink()
    with pytest.raises(EvaluationError, match="1 of the 3 test images .* the first: " +
                       str(folder / "0000000001.png")):
        benchmark_image_paths(tmp_path, entries)
    with pytest.raises(EvaluationError, match=r"0000000000\.jpg .*add --png"):
        benchmark_image_paths(tmp_path, entries, "jpg")
    with pytest.raises(EvaluationError, match="holds no KITTI benchmark test images: none of " +
                       str(tmp_path / "image")):
        benchmark_image_paths(tmp_path / "image", entries)


# ---- eigen -> eigen_benchmark ----------------------------------------------------------------

def test_eigen_to_benchmark_hand_made():
    disps = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    mapped = eigen_to_benchmark(disps, np.array([4, 0, 2]))
    assert mapped.shape == (3, 2, 3) and mapped[:, 0, 0].tolist() == [4.0, 0.0, 2.0]
    with pytest.raises(EvaluationError, match="reach 5, but there are 5 predictions"):
        eigen_to_benchmark(disps, np.array([0, 5]))


def test_shared_ids_map_the_eigen_list_onto_eigen_benchmark(kitti_dir, tmp_path):
    splits = kitti_dir / "splits"
    ids = read_eigen_to_benchmark_ids(splits)
    eigen = read_split(splits, "eigen", "test")
    bench = read_split(splits, "eigen_benchmark", "test")
    assert ids.shape == (652,) and len(bench) == 652 and len(eigen) == 697
    assert ids.min() == 0 and ids.max() == 696 and (np.diff(ids) > 0).all()
    assert [eigen[i] for i in ids] == bench  # same drive, frame and camera, line by line
    with pytest.raises(EvaluationError, match=str(tmp_path / "benchmark" /
                                                  "eigen_to_benchmark_ids.npy")):
        read_eigen_to_benchmark_ids(tmp_path)


# ---- the tool --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return random_depth_weights(tmp_path_factory.mktemp("w") / "random64", seed=11)


def test_benchmark_split_writes_the_submission(weights, tmp_path):
    folder, images = write_test_images(tmp_path / "data", 3, seed=1)
    write_benchmark_list(tmp_path / "splits", 3)
    out = tmp_path / "weights"
    out.mkdir()
    for path in weights.iterdir():
        (out / path.name).symlink_to(path)
    record = evaluate(EvalArgs(load_weights_folder=str(out), eval_split="benchmark",
                               data_path=str(tmp_path / "data" / "depth_selection"),
                               split_dir=str(tmp_path / "splits"), png=True, batch_size=2,
                               save_pred_disps=True))
    disps = np.load(out / "disps_benchmark_split.npy")
    np.testing.assert_allclose(disps, direct_disparities(weights, images), rtol=1e-5,
                               atol=1e-6)
    assert_pngs_match(out / "benchmark_predictions", disps)
    assert record["submission_dir"] == str(out / "benchmark_predictions")
    assert "abs_rel" not in record and record["num_images"] == 3

    # the saved disparities through the command line: --eval_out_dir, no mode flag needed
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "bin" / "evaluate_depth"),
                           "--eval_split", "benchmark", "--split_dir", str(tmp_path / "splits"),
                           "--ext_disp_to_eval", str(out / "disps_benchmark_split.npy"),
                           "--eval_out_dir", str(tmp_path / "cli")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for index in range(3):
        name = f"{index:010d}.png"
        assert (tmp_path / "cli" / name).read_bytes() == \
            (out / "benchmark_predictions" / name).read_bytes()
    assert (tmp_path / "cli" / "submission.zip").is_file()

    (folder / "0000000002.png").unlink()
    with pytest.raises(EvaluationError, match=str(folder / "0000000002.png")):
        evaluate(EvalArgs(load_weights_folder=str(out), eval_split="benchmark",
                          data_path=str(tmp_path / "data"), split_dir=str(tmp_path / "splits"),
                          png=True))
    with pytest.raises(ValueError, match="does not apply to --eval_split benchmark"):
        evaluate(EvalArgs(eval_split="benchmark", eval_eigen_to_benchmark=True,
                          ext_disp_to_eval=str(out / "disps_benchmark_split.npy")))


def fake_eigen_world(root, count):
    """``count`` frames of one drive in KITTI's raw layout and an ``eigen`` list of them."""
    rng = np.random.default_rng(2)
    images = []
    data = root / "raw" / DRIVE / "image_02" / "data"
    data.mkdir(parents=True)
    for index in range(count):
        image = rng.integers(0, 256, (64, 200, 3), dtype=np.uint8)
        assert cv2.imwrite(str(data / f"{index:010d}.png"), image[:, :, ::-1])
        images.append(image)
    splits = root / "splits"
    (splits / "eigen").mkdir(parents=True)
    (splits / "eigen" / "test_files.txt").write_text(
        "".join(f"{DRIVE} {i} l\n" for i in range(count)))
    return splits, images


def write_eigen_benchmark_gt(splits, ids, seed=3):
    """Ground truth for ``len(ids)`` eigen_benchmark images and the id map to them."""
    rng = np.random.default_rng(seed)
    maps = np.empty(len(ids), dtype=object)
    for i in range(len(ids)):
        gt = rng.uniform(2, 60, (40, 120)).astype(np.float32)
        gt[rng.random(gt.shape) < 0.5] = 0  # sparse, as LiDAR
        maps[i] = gt
    (splits / "eigen_benchmark").mkdir(parents=True, exist_ok=True)
    np.savez(splits / "eigen_benchmark" / "gt_depths.npz", data=maps)
    (splits / "benchmark").mkdir(parents=True, exist_ok=True)
    np.save(splits / "benchmark" / "eigen_to_benchmark_ids.npy", np.asarray(ids, np.int64))
    return list(maps)


def test_eigen_predictions_scored_on_eigen_benchmark(weights, tmp_path):
    splits, images = fake_eigen_world(tmp_path, 5)
    ids = [3, 0, 4]
    gts = write_eigen_benchmark_gt(splits, ids)
    raw = str(tmp_path / "raw")
    # --no_eval: the eigen list has no ground truth here, and none is read
    first = evaluate(EvalArgs(load_weights_folder=str(weights), data_path=raw, png=True,
                              split_dir=str(splits), eval_split="eigen", no_eval=True,
                              save_pred_disps=True, eval_out_dir=str(tmp_path / "a")))
    assert "abs_rel" not in first
    eigen_disps = np.load(tmp_path / "a" / "disps_eigen_split.npy")
    np.testing.assert_allclose(eigen_disps, direct_disparities(weights, images), rtol=1e-5,
                               atol=1e-6)

    common = dict(split_dir=str(splits), eval_split="eigen_benchmark", eval_stereo=True)
    saved = evaluate(EvalArgs(ext_disp_to_eval=str(tmp_path / "a" / "disps_eigen_split.npy"),
                              eval_eigen_to_benchmark=True, **common))
    expected = numpy_protocol(eigen_disps[ids], gts, False, False, 5.4)[0]
    np.testing.assert_allclose([saved[n] for n in NAMES[:4]], expected[:4], rtol=1e-5)
    np.testing.assert_allclose([saved[n] for n in NAMES[4:]], expected[4:], atol=2 / 2400)
    assert saved["num_images"] == 3 and saved["garg_crop"] is False

    # the network run on the eigen list's images, then mapped: the same predictions
    run = evaluate(EvalArgs(load_weights_folder=str(weights), data_path=raw, png=True,
                            eval_eigen_to_benchmark=True, save_pred_disps=True,
                            eval_out_dir=str(tmp_path / "b"), **common))
    np.testing.assert_allclose(np.load(tmp_path / "b" / "disps_eigen_benchmark_split.npy"),
                               eigen_disps[ids], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose([run[n] for n in NAMES], [saved[n] for n in NAMES], rtol=1e-5)

    np.save(splits / "benchmark" / "eigen_to_benchmark_ids.npy", np.array([0, 1]))
    with pytest.raises(EvaluationError, match="maps 2 images but .*holds 3 ground-truth maps"):
        evaluate(EvalArgs(ext_disp_to_eval=str(tmp_path / "a" / "disps_eigen_split.npy"),
                          eval_eigen_to_benchmark=True, **common))
