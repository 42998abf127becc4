"""The autouse fixtures of conftest.py put process-wide settings back after each test and after
each module: checked in pytest sessions run in-process, where a first test (or a module's
fixture) changes them and the next finds them as they were."""

import random

import keras
import numpy as np
import pytest
import tensorflow as tf

from monodepth_tf.training.step import keep_graph_arithmetic, restore_grappler_options
from tests import conftest


def test_keep_graph_arithmetic_returns_a_restorer():
    before = tf.config.optimizer.get_experimental_options()
    restore = keep_graph_arithmetic()
    changed = tf.config.optimizer.get_experimental_options()
    assert changed["constant_folding"] is False and changed["arithmetic_optimization"] is False
    restore()
    assert tf.config.optimizer.get_experimental_options() == before
    assert "constant_folding" not in before  # back to TensorFlow's default, not forced on


def test_restore_grappler_options_removes_options_set_since():
    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options({"layout_optimizer": True, "remapping": False})
    restore_grappler_options(before)
    assert tf.config.optimizer.get_experimental_options() == before


PAIR = """
    import keras, tensorflow as tf
    from monodepth_tf.training.step import keep_graph_arithmetic
    from tests import conftest

    BEFORE = {}

    def test_a_test_that_changes_every_setting(process_settings):
        BEFORE.update(process_settings)
        keep_graph_arithmetic()
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
        tf.config.optimizer.set_jit(True)
        tf.config.run_functions_eagerly(True)
        tf.config.experimental.enable_op_determinism()
        keras.config.set_dtype_policy("mixed_bfloat16")
        keras.config.set_floatx("float64")
        keras.config.set_image_data_format("channels_first")
        keras.utils.set_random_seed(1234)  # Python, NumPy, TensorFlow and Keras seeds
        keras.random.uniform(())  # creates and advances Keras's global seed generator
        after = conftest.snapshot_settings()
        unchanged = [name for name in after
                     if conftest._same(after[name], process_settings[name])]
        assert unchanged == []  # each setting really changed, so the next test checks something

    def test_the_next_test_finds_every_setting_as_before():
        assert BEFORE
        now = conftest.snapshot_settings()
        assert set(now) == set(BEFORE)
        differ = [name for name in now if not conftest._same(now[name], BEFORE[name])]
        assert differ == []
        assert "constant_folding" not in tf.config.optimizer.get_experimental_options()
        assert keras.config.dtype_policy().name == "float32"
        assert not conftest._op_determinism()
    """


def test_settings_changed_by_a_test_do_not_reach_the_next_test(pytester):
    """A pytest session (one process, file order) with this conftest: the first test changes
    every setting, the second finds each as it was before the first."""
    pytester.makeconftest((conftest.PROJECT_ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_pair=PAIR)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "test_pair.py")
    result.assert_outcomes(passed=2)


def test_random_states_are_restored_not_reseeded(process_settings):
    """Restoring puts back the random generators' states: a draw after the restore equals a
    draw from the state the test started with."""
    state = process_settings["Python random state"]
    expected = random.Random()
    expected.setstate(state)
    random.seed(5)
    conftest.restore_settings(process_settings)
    assert random.random() == expected.random()
    np_state = process_settings["NumPy random state"]
    np.random.seed(5)
    conftest.restore_settings(process_settings)
    generator = np.random.RandomState()
    generator.set_state(np_state)
    assert np.random.random() == generator.random_sample()
    conftest.restore_settings(process_settings)


@pytest.mark.parametrize("policy", ["mixed_float16"])
def test_restore_settings_names_what_it_put_back(process_settings, policy):
    keras.config.set_dtype_policy(policy)
    assert conftest.restore_settings(process_settings) == ["Keras dtype policy"]
    assert conftest.restore_settings(process_settings) == []


def test_settings_changed_by_a_module_fixture_do_not_reach_the_next_module(pytester):
    """A pytest session of two modules with this conftest: the first module's module-scoped
    fixture changes the dtype policy and the grappler options; its test sees
    them; the second module's test finds them as they were."""
    pytester.makeconftest((conftest.PROJECT_ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_a="""
        import keras, pytest, tensorflow as tf
        from monodepth_tf.training.step import keep_graph_arithmetic

        @pytest.fixture(scope="module")
        def changed():
            keras.config.set_dtype_policy("mixed_float16")
            keep_graph_arithmetic()

        def test_sees_the_change(changed):
            assert keras.config.dtype_policy().name == "mixed_float16"
        """, test_b="""
        import keras, tensorflow as tf

        def test_finds_the_settings_as_before():
            assert keras.config.dtype_policy().name == "float32"
            assert "constant_folding" not in tf.config.optimizer.get_experimental_options()
        """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "test_a.py", "test_b.py")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("cores, memory_gib, workers", [
    (2, 24, 2),  # this project's machines
    (16, 24, 4),  # memory-bound: 24 // 6
    (8, 64, 8),  # core-bound
    (4, 4, 1),  # at least one
])
def test_xdist_runs_a_worker_per_core_within_memory(monkeypatch, cores, memory_gib, workers):
    monkeypatch.setattr(conftest.os, "sched_getaffinity", lambda pid: set(range(cores)))
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": memory_gib * 2**30 // 4096}
    monkeypatch.setattr(conftest.os, "sysconf", pages.__getitem__)
    assert conftest.pytest_xdist_auto_num_workers(None) == workers
