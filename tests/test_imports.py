"""The package's import graph is acyclic, function-local imports included: modules
register with lower layers (``hyperdual.array._IMPL``, ``FUNCTIONS``), never the reverse."""
import ast
import pathlib

import hyperdual

PACKAGE = pathlib.Path(hyperdual.__file__).parent


def _imports(path: pathlib.Path, modules: set) -> set:
    """The package modules that ``path`` imports anywhere in its text."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
            elif node.level == 0 and node.module and node.module.split(".")[0] == "hyperdual":
                parts = node.module.split(".")
                names = parts[1:2] if len(parts) > 1 else [a.name for a in node.names]
            else:
                continue
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("hyperdual.") and a.name.count(".") >= 1)
    return (found & modules) - {path.stem}


def _graph() -> dict:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {p.stem: _imports(p, modules) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def _cycle(graph: dict):
    """One import cycle as a list of modules, or None."""
    state: dict = {}
    path: list = []

    def visit(m):
        state[m] = "open"
        path.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == "open":
                return path[path.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        state[m] = "done"
        path.pop()
        return None
    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    assert "array" in graph and "rules" in graph["ops"]  # (the graph is read at all)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_lowest_layers_import_nothing_of_the_package():
    graph = _graph()
    for leaf in ("rules", "context", "settings", "kernels", "cache", "threads"):
        assert graph[leaf] == set(), (leaf, graph[leaf])
    assert graph["ops"] == {"rules"}


def test_the_chain_rule_imports_no_layout():
    """Layouts (packed buffers, windows, column lanes) register hooks with the array type
    and import the chain rule, never the reverse."""
    graph = _graph()
    assert not {"packed", "window", "columns"} & graph["chain"], graph["chain"]
    assert not {"chain", "functions", "window", "columns", "pattern", "record"} & graph["array"]
