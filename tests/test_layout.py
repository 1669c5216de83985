"""The layout (issue 18): scripts at the root, one package by concern, dependencies flowing one way."""
import ast
import pickle

import torch

from osdkit.model import deepEpiCnn

import exportUtils
from conftest import ROOT

PACKAGE = ROOT / "osdkit"
# scripts -> cli -> training -> reports -> domain packages -> io; a module imports none above it
LAYERS = {"cli": 5, "training": 4, "reports": 3, "data": 2, "sim": 2, "app": 2, "model": 2, "export": 2,
          "phone": 2, "io": 1}


def module_files():
    """{dotted module name: path} of the root scripts and every module of the package."""
    out = {p.stem: p for p in ROOT.glob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(path, modules):
    """Our modules that `path` imports anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
    return found & set(modules)


def import_graph():
    modules = module_files()
    return {name: sorted(imports_of(path, modules) - {name}) for name, path in modules.items()}


def layer(name):
    if not name.startswith("osdkit."):
        return 6 if name != "osdkit" else 0  # root scripts; the package's own __init__
    return LAYERS[name.split(".")[1]]


def test_no_import_cycle_counting_imports_inside_functions():
    graph, state = import_graph(), {}

    def visit(name, chain):
        state[name] = "open"
        for other in graph[name]:
            assert state.get(other) != "open", "import cycle: " + " -> ".join(chain + [other])
            if other not in state:
                visit(other, chain + [other])
        state[name] = "done"
    for name in graph:
        if name not in state:
            visit(name, [name])
    assert len(graph) > 50


def test_dependencies_flow_one_way():
    """A package module never imports a root script or a module of a higher layer; the export core
    does not know the simulator (callers pass the example windows in)."""
    upward = [(name, other) for name, others in import_graph().items() if name.startswith("osdkit")
              for other in others if layer(other) > layer(name)]
    assert upward == []
    assert not [m for m in import_graph()["osdkit.export.exportCore"] if m.startswith("osdkit.sim")]


def test_every_folder_says_what_lives_there_and_the_readme_maps_them():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    for init in [PACKAGE / "__init__.py", *PACKAGE.glob("*/__init__.py")]:
        assert ast.get_docstring(ast.parse(init.read_text())), init
        folder = init.parent.relative_to(ROOT).as_posix()
        assert f"`{folder}/`" in layout, folder
    scripts = sorted(p.name for p in ROOT.glob("*.py"))
    assert [s for s in scripts if f"`{s}`" not in readme] == []
    assert [str(p) for p in module_files().values() if "/work/" in p.read_text()] == []


def test_root_facades_export_what_the_guide_shows(tmp_path):
    """EXECUTORCH_EXPORT.md: other architectures export with exportUtils.export_pte(...) from their own
    code; deepEpiCnn.DeepEpiCnn stays importable for whole-module pickles."""
    module = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 5), torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten())
    report = exportUtils.export_pte(module.eval(), (1, 1, 750), tmp_path / "other.pte",
                                    inputs=exportUtils.reference_windows((1, 1, 750)))
    assert report["parity"]["ok"] and report["num_classes"] == 2
    assert pickle.loads(b"cdeepEpiCnn\nDeepEpiCnn\n.") is deepEpiCnn.DeepEpiCnn  # the earlier import path
