"""The package's imports go one way: no circles, no arrow from a lower layer to a higher one, no
private module or name used outside its own package.

The graph is read from the source with ``ast``, so it sees every import: at module level, inside
functions (lazy imports, which still make a circle: the two modules still need each other), and
under ``if TYPE_CHECKING:`` (a type is a dependency too). ``from pkg import name`` is an edge to the
module ``pkg.name`` when that is a module, else to ``pkg`` itself. Importing ``a.b.c`` runs the
packages above it too, so a module outside ``a.b`` also has edges to ``a.b`` (``a.b``'s own modules
do not: their package is already being imported). Backends named as "module:Class" strings
(``memharness.models.registry``) are imported by name at run time and are not edges. The last test
keeps modules and functions small.
"""

from __future__ import annotations

import ast
from pathlib import Path

import memharness

PACKAGE = Path(memharness.__file__).parent

# Lowest first. A module belongs to the layer of the longest prefix that names it; it may import
# its own layer and the ones below, never one above. Lower layers never know the upper ones exist.
LAYERS: tuple[tuple[str, ...], ...] = (
    # base: errors, versions, threads, guidance's one rule, where the shipped data lives
    ("memharness", "memharness.errors", "memharness.progress", "memharness.runtime", "memharness.guidance",
     "memharness.shipped"),
    # numbers and files: the noise schedule, the paper's pure quantities, the fixture format and store
    ("memharness.schedule", "memharness.analysis", "memharness.trace"),
    # the Denoiser protocol, model cards and the backends
    ("memharness.models",),
    # sampling and recording trajectories, prompt data, memorization scores and labels
    ("memharness.sampling", "memharness.trace.recorder", "memharness.trace.tracer", "memharness.trace.shards",
     "memharness.data", "memharness.scoring"),
    # App H: real-time detection and mitigation, which hook into sampling
    ("memharness.detection", "memharness.mitigation"),
    # claim files, checks, statistics, verdicts
    ("memharness.claims",),
    # reporters
    ("memharness.report",),
    # what the commands share (fixtures, console, device, options), and the entry points beside the CLI
    ("memharness.cli.runtime", "memharness.cli.options", "memharness.guide", "memharness.zoo"),
    # the entry points: the command line (one module per command) and the pytest plugin
    ("memharness.cli", "memharness.__main__", "memharness.pytest_plugin"),
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _resolve(name: str) -> str | None:
    """The module a dotted name lives in (``a.b.func`` → ``a.b``), None outside the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, str, int]]:
    """(imported module, name imported or "", line) for every memharness import in ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    package = module if _is_package(module) else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                if target:
                    found.append((target, "", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in MODULES:
                    found.append((full, "", node.lineno))
                elif _resolve(source):
                    found.append((_resolve(source), alias.name, node.lineno))
    found += [(parent, "", line) for target, _, line in found for parent in _parents(target)
              if not (module == parent or module.startswith(parent + "."))]
    return [(target, name, line) for target, name, line in found if target != module]


def _parents(module: str) -> list[str]:
    """The packages whose ``__init__`` runs before ``module`` (the root package's is trivial)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


GRAPH = {module: _imports(module) for module in MODULES}


def _layer(module: str) -> int:
    best, depth = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def _cycles() -> list[list[str]]:
    """One circle per strongly connected component of more than one module (Tarjan)."""
    edges = {m: sorted({t for t, _, _ in GRAPH[m]}) for m in MODULES}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_circle_in(sorted(component), edges))

    for module in MODULES:
        if module not in index:
            visit(module)
    return found


def _circle_in(component: list[str], edges: dict[str, list[str]]) -> list[str]:
    """A concrete circle start → … → start inside a strongly connected component (breadth first)."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in edges[v]:
            if w == start:
                return paths[v] + [start]
            if w in members and w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return component


def test_the_graph_sees_the_package():
    """A parser that found nothing would pass every rule below."""
    assert len(MODULES) > 50 and "memharness.cli" in MODULES and "memharness.models.base" in MODULES
    assert sum(len(v) for v in GRAPH.values()) > 200
    # a lazy import inside a function counts: the commands import the engine that way
    assert any(t == "memharness.claims.engine" for t, _, _ in GRAPH["memharness.cli.check"])


def test_no_import_circles():
    circles = _cycles()
    assert not circles, "import circles:\n" + "\n".join(" → ".join(c) for c in circles)


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_upward_imports():
    upward = []
    for module, imports in GRAPH.items():
        for target, _, line in imports:
            if _layer(target) > _layer(module):
                upward.append(f"{module}:{line} imports {target} (layer {_layer(module)} → {_layer(target)})")
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(set(upward)))


def _package_of(module: str) -> str:
    return module if _is_package(module) else module.rpartition(".")[0]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_module_or_name_across_packages():
    """``pkg._mod`` and ``mod._name`` belong to ``pkg`` / ``mod``'s package; others use public names."""
    leaks = []
    for module, imports in GRAPH.items():
        for target, name, line in imports:
            owner = _package_of(target)
            if module == owner or module.startswith(owner + "."):
                continue
            if any(_private(part) for part in target.split(".")[1:]) or _private(name):
                leaks.append(f"{module}:{line} imports {target}{'.' + name if name else ''}")
    assert not leaks, "private modules or names used outside their package:\n" + "\n".join(sorted(set(leaks)))


def test_the_rules_catch_a_circle_and_an_upward_arrow():
    """The checks above can fail: a made-up graph with a circle and an upward arrow is caught."""
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": []}
    assert _circle_in(["a", "b", "c"], edges) == ["a", "b", "c", "a"]
    assert _layer("memharness.trace.store") < _layer("memharness.models.base") < _layer("memharness.trace.tracer")
    assert _layer("memharness.trace.store") < _layer("memharness.trace.tracer")
    assert _layer("memharness.cli.mitigate") > _layer("memharness.claims.engine")
    assert _layer("memharness.cli.check") == _layer("memharness.pytest_plugin") > _layer("memharness.cli.runtime")
    # Importing a.b.c runs a.b's __init__: an edge for modules outside a.b, none for a.b's own.
    assert _parents("memharness.cli.runtime") == ["memharness.cli"]


MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def test_files_and_functions_stay_small():
    """A module does one job and a function reads in one screen (issue 18's house rules)."""
    too_long = []
    for module, path in MODULES.items():
        source = path.read_text(encoding="utf-8")
        if source.count("\n") > MAX_FILE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE.parent)}: {source.count(chr(10))} lines > {MAX_FILE_LINES}")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{module}.{node.name}: {length} lines > {MAX_FUNCTION_LINES}")
    assert not too_long, "split these:\n" + "\n".join(too_long)
