"""The package's shape: imports run one way (no cycle, no module importing a higher layer), no
function-local imports of the package where a top-level one would do, no module-level mutable
flags, and the TensorFlow-free modules stay TensorFlow-free."""

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

from tests.helpers import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "monodepth_tf"

# Layers, bottom first: a module may import its own layer or a lower one, never a higher one
# (a module belongs to the first entry naming it or a package above it).
LAYERS = [
    ("monodepth_tf.progress", "monodepth_tf.download", "monodepth_tf.files", "monodepth_tf.cpu",
     "monodepth_tf.data.errors", "monodepth_tf.data.frames"),
    ("monodepth_tf.config",),
    ("monodepth_tf.geometry", "monodepth_tf.data", "monodepth_tf.synthetic"),
    ("monodepth_tf.networks",),
    ("monodepth_tf.losses",),
    ("monodepth_tf.model",),
    ("monodepth_tf.weights",),
    ("monodepth_tf.inference",),
    ("monodepth_tf.evaluation",),
    ("monodepth_tf.export", "monodepth_tf.training"),
    ("monodepth_tf.cli",),
]
# Function-local imports of the package that stay: each keeps a TensorFlow-free module free of
# TensorFlow until the function runs (the tools parse flags and report mistakes first), or
# reaches up a layer at call time (below).
LAZY_IMPORTS_ALLOWED = {
    "monodepth_tf.cli.check_data", "monodepth_tf.cli.common", "monodepth_tf.cli.evaluate_depth",
    "monodepth_tf.cli.export", "monodepth_tf.cli.predict", "monodepth_tf.cli.show_sample",
    "monodepth_tf.cli.train", "monodepth_tf.evaluation.pose",
    "monodepth_tf.networks.presets",
}
# Imports that go up a layer, each function-local (at call time, never at import time): the
# networks' from_preset (keras-hub's convention: the class loads its released weights) needs the
# model zoo, which builds networks and so sits above them.
UPWARD_IMPORTS_ALLOWED = {("monodepth_tf.networks.presets", "monodepth_tf.weights.zoo")}
TENSORFLOW_FREE = ["monodepth_tf", "monodepth_tf.config", "monodepth_tf.progress",
                   "monodepth_tf.download", "monodepth_tf.files", "monodepth_tf.data.frames",
                   "monodepth_tf.data.splits",
                   "monodepth_tf.data.images", "monodepth_tf.data.layout",
                   "monodepth_tf.data.kitti", "monodepth_tf.data.calibration",
                   "monodepth_tf.data.standard_splits", "monodepth_tf.evaluation.pose",
                   "monodepth_tf.cli.common"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> Dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(node: ast.AST, modules: Set[str]) -> List[str]:
    """The package modules an import statement loads (``from pkg import sub`` names ``sub``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
        return []
    names = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
    return names or ([node.module] if node.module in modules else [])


def import_graph(modules: Dict[str, ast.Module], top_level_only: bool) -> Dict[str, Set[str]]:
    """``{module: package modules it imports}``: at import time (``top_level_only``), or
    anywhere, function-local imports included."""
    graph = {}
    for name, tree in modules.items():
        nodes = tree.body if top_level_only else ast.walk(tree)
        edges = set()
        for node in nodes:
            edges.update(imported_modules(node, set(modules)))
        graph[name] = {b for b in edges - {name} if (name, b) not in UPWARD_IMPORTS_ALLOWED}
    return graph


def layer_of(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS")


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as ``[a, b, ..., a]``, or [] when there is none."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return []


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_package_has_no_import_cycle():
    """Counting function-local imports too: a lazy import hides a cycle, it does not remove it
    (the package roots re-export their submodules, so they are left out)."""
    graph = import_graph(all_modules(), top_level_only=False)
    graph = {a: {b for b in targets if not _is_package_root(b)} for a, targets in graph.items()}
    assert find_cycle(graph) == []


def _is_package_root(module: str) -> bool:
    return (PACKAGE.parent / module.replace(".", "/") / "__init__.py").is_file()


def test_the_allowed_upward_imports_are_function_local():
    """They may not run at import time (the layers stay a one-way order for loading), and each
    still exists (a stale entry would hide a new one)."""
    modules = all_modules()
    top_level = {(a, b) for a, tree in modules.items()
                 for node in tree.body for b in imported_modules(node, set(modules))}
    anywhere = {(a, b) for a, tree in modules.items()
                for node in ast.walk(tree) for b in imported_modules(node, set(modules))}
    assert UPWARD_IMPORTS_ALLOWED <= anywhere - top_level


def test_no_module_imports_a_higher_layer():
    graph = import_graph(all_modules(), top_level_only=False)
    upward = [f"{a} -> {b}" for a, targets in sorted(graph.items()) for b in sorted(targets)
              if a != "monodepth_tf" and layer_of(b) > layer_of(a)]
    assert upward == []


def test_function_local_imports_of_the_package_are_only_the_lazy_ones():
    modules = all_modules()
    found = set()
    for name, tree in modules.items():
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(function):
                    if imported_modules(node, set(modules)):
                        found.add(name)
    assert found <= LAZY_IMPORTS_ALLOWED, sorted(found - LAZY_IMPORTS_ALLOWED)


def test_no_module_rebinds_a_global():
    offenders = [f"{name}: global {', '.join(node.names)}"
                 for name, tree in all_modules().items() for node in ast.walk(tree)
                 if isinstance(node, ast.Global)]
    assert offenders == []


def test_tensorflow_free_modules_do_not_load_tensorflow():
    code = ("import importlib, sys\n"
            f"for name in {TENSORFLOW_FREE!r}:\n"
            "    importlib.import_module(name)\n"
            "    assert 'tensorflow' not in sys.modules, name\n"
            "    assert 'keras' not in sys.modules, name\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
