"""Data flows one way through `research/`: no import cycles, no lower layer importing a higher one.

The package's imports are read with `ast` (nothing is imported or run), at every depth: a
function-level import is as much a dependency as a top-level one.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "research"

# Low to high: a module may import its own layer or lower ones. research/__init__.py and
# research/__main__.py sit above all of them.
LAYERS = ("common", "theory", "networks", "training", "advice", "measure", "views", "cli")
TOP = len(LAYERS)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest prefix of a dotted name that is a module of the package."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts.pop()
    return None


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    # Relative to the importer's package: a package's __init__ is its own package.
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def module_imports(tree: ast.AST, importer: str, modules: set[str], is_package=False) -> set[str]:
    """Every module of the package that `tree` imports, anywhere in it."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, importer, is_package)
            # `from research.x import y` imports the submodule research.x.y when there is one,
            # else the name y from research.x.
            names = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name.split(".")[0] == PACKAGE:
                target = _resolve(name, modules)
                if target is not None and target != importer:
                    found.add(target)
    return found


def import_graph(root: Path = ROOT / PACKAGE) -> dict[str, set[str]]:
    files = sorted(root.rglob("*.py"))
    names = {module_name(path, root.parent): path for path in files}
    modules = set(names)
    return {
        name: module_imports(
            ast.parse(path.read_text(), str(path)), name, modules, path.name == "__init__.py"
        )
        for name, path in names.items()
    }


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return TOP
    if parts[1] not in LAYERS:
        raise AssertionError(f"{module}: folder {parts[1]!r} has no place in LAYERS")
    return LAYERS.index(parts[1])


def back_edges(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} -> {target} ({LAYERS[layer(source)]} must not import "
        f"{LAYERS[layer(target)] if layer(target) < TOP else 'the package top'})"
        for source, targets in graph.items()
        for target in targets
        if layer(target) > layer(source)
    )


def cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], set[str]]]:
    """Each strongly connected group of modules (Tarjan), with one cycle through it as a closed
    path: breaking that cycle may leave others in the group, so the group is reported too."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [(_cycle_in(group, graph), group) for group in groups]


def _cycle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest closed path through the group's first module (breadth-first)."""
    start = min(group)
    parents = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for succ in sorted(graph.get(node, ()) & group):
                if succ == start:
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if succ not in parents:
                    parents[succ] = node
                    nxt.append(succ)
        frontier = nxt
    raise AssertionError(f"no cycle in {sorted(group)}")


def problems(graph: dict[str, set[str]]) -> list[str]:
    # The package top imports anything, and anything may be imported only by it; a cycle through
    # it (research/__init__ is run before every submodule) is not a flow of data between layers.
    inner = {
        source: {t for t in targets if layer(t) < TOP}
        for source, targets in graph.items()
        if layer(source) < TOP
    }
    found = [f"back-edge: {edge}" for edge in back_edges(graph)]
    for cycle, group in cycles(inner):
        rest = ", ".join(sorted(group - set(cycle)))
        found.append(f"cycle: {' -> '.join(cycle)}" + (f" (also in it: {rest})" if rest else ""))
    return found


def test_research_imports_flow_one_way():
    found = problems(import_graph())
    assert not found, "\n".join(found)


def test_the_graph_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "training").mkdir(parents=True)
    (pkg / "views").mkdir()
    for path in ("__init__.py", "training/__init__.py", "views/__init__.py"):
        (pkg / path).write_text("")
    (pkg / "training" / "spec.py").write_text("import json\n")
    (pkg / "training" / "store.py").write_text("from research.training import spec\n")
    (pkg / "training" / "plan.py").write_text(
        "def f():\n"
        "    from research.training.store import load\n"
        "    import research.training.spec\n"
    )
    (pkg / "views" / "report.py").write_text("from . import figures\nfrom ..training import plan\n")
    (pkg / "views" / "figures.py").write_text("from research import views\n")
    graph = import_graph(pkg)
    assert graph["research.training.store"] == {"research.training.spec"}
    assert graph["research.training.plan"] == {"research.training.store", "research.training.spec"}
    assert graph["research.views.report"] == {"research.views.figures", "research.training.plan"}
    assert graph["research.views.figures"] == {"research.views"}
    assert graph["research.training.spec"] == set()


def test_the_checker_reports_a_cycle_and_a_back_edge():
    clean = {
        "research.common.errors": set(),
        "research.training.spec": {"research.common.errors"},
        "research.training.plan": {"research.training.spec"},
        "research.views.report": {"research.training.plan"},
        "research": {"research.views.report"},
    }
    assert problems(clean) == []

    cyclic = {**clean, "research.training.spec": {"research.training.plan"}}
    assert problems(cyclic) == [
        "cycle: research.training.plan -> research.training.spec -> research.training.plan"
    ]

    backward = {**clean, "research.training.plan": {"research.training.spec", "research.views"}}
    assert problems(backward) == [
        "back-edge: research.training.plan -> research.views (training must not import views)"
    ]

    to_top = {**clean, "research.common.errors": {"research"}}
    assert problems(to_top) == [
        "back-edge: research.common.errors -> research (common must not import the package top)"
    ]
