"""monodepth_tf.config: ModelConfig's config.json (the format weights folders have always had)
and the pose model types."""

import json

import pytest

from monodepth_tf.config import (JSON_FIELDS, POSE_MODEL_TYPES, ConfigError, ModelConfig,
                                 PoseModelType, pose_model_type)

# A config.json as weights folders were written before ModelConfig (NetworkConfig's fields,
# then the run's extras).
EARLIER_CONFIG = {"height": 96, "width": 320, "num_layers": 34, "scales": [0, 1, 2],
                  "use_stereo": True, "pose_model_type": "posecnn", "num_pose_frames": 3,
                  "min_depth": 0.5, "max_depth": 80.0, "epoch": 4, "step": 120,
                  "val": {"abs_rel": 0.125}}


def test_an_earlier_config_json_reads_field_by_field(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(EARLIER_CONFIG))
    config = ModelConfig.from_json(path)
    assert (config.height, config.width, config.num_layers, config.scales) == (96, 320, 34,
                                                                               (0, 1, 2))
    assert (config.use_stereo, config.pose_model_type, config.num_pose_frames) == \
        (True, "posecnn", 3)
    assert (config.min_depth, config.max_depth) == (0.5, 80.0)


def test_to_json_writes_the_nine_fields_then_the_extras():
    config = ModelConfig(height=96, width=320, num_layers=34, scales=(0, 1, 2), use_stereo=True,
                         pose_model_type="posecnn", num_pose_frames=3, min_depth=0.5,
                         max_depth=80.0, frame_ids=(0, -1, 1, "s"), predictive_mask=True)
    written = json.loads(config.to_json({"epoch": 4, "step": 120, "val": {"abs_rel": 0.125}}))
    assert written == EARLIER_CONFIG
    assert list(written)[:len(JSON_FIELDS)] == list(JSON_FIELDS)


def test_num_pose_frames_follows_the_pose_input_unless_given():
    assert ModelConfig().num_pose_frames == 2
    assert ModelConfig(pose_model_input="all", frame_ids=(0, -2, -1, 1, "s")).num_pose_frames == 4
    assert ModelConfig(pose_model_input="all", num_pose_frames=3).num_pose_frames == 3
    assert ModelConfig(frame_ids=(0, "s")).uses_pose_net is False
    assert ModelConfig(frame_ids=(0, "s", -1)).temporal_keys == ("-1",)


def test_an_unreadable_config_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=f"{path}: cannot read the network config"):
        ModelConfig.from_json(path)


def test_pose_model_types_are_strings_and_listed_once():
    assert POSE_MODEL_TYPES == ("separate_resnet", "posecnn", "shared")
    assert PoseModelType.POSECNN == "posecnn" and json.dumps(PoseModelType.SHARED) == '"shared"'
    assert pose_model_type("shared") is PoseModelType.SHARED
    with pytest.raises(ValueError, match="--pose_model_type must be separate_resnet, posecnn or "
                                         "shared, got 'resnet'"):
        pose_model_type("resnet")
