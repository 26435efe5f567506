"""The package's import graph is acyclic, function-local imports included: modules
register with lower layers (``hyperdual.execute.array._IMPL``, ``FUNCTIONS``), never the reverse."""
import ast
import pathlib

import hyperdual

PACKAGE = pathlib.Path(hyperdual.__file__).parent


def _name(path: pathlib.Path) -> str:
    """``execute.chain`` for ``hyperdual/execute/chain.py``; ``execute`` for its ``__init__``."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path, modules: set) -> set:
    """The package modules that ``path`` imports anywhere in its text (a package's
    ``__init__`` stands for the package)."""
    me = _name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                stem = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "hyperdual":
                stem = node.module.partition(".")[2]
            else:
                continue
            for alias in node.names:
                full = f"{stem}.{alias.name}" if stem else alias.name
                found.add(full if full in modules else stem)
        elif isinstance(node, ast.Import):
            found.update(a.name.partition(".")[2] for a in node.names if a.name.startswith("hyperdual."))
    return (found & modules) - {me, ""}


def _graph() -> dict:
    paths = [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]
    modules = {_name(p) for p in paths}
    return {_name(p): _imports(p, modules) for p in paths if _name(p)}


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
    assert "execute.array" in graph and "ops.rules" in graph["ops.registry"]  # (the graph is read at all)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_lowest_layers_import_nothing_of_the_package():
    graph = _graph()
    for leaf in ("ops.rules", "execute.context", "settings", "execute.kernels", "lazy.cache",
                 "execute.threads"):
        assert graph[leaf] == set(), (leaf, graph[leaf])
    assert graph["ops.registry"] == {"ops.rules"}


def test_the_chain_rule_imports_no_layout():
    """Layouts (packed buffers, windows, column lanes) register hooks with the array type
    and import the chain rule, never the reverse."""
    graph = _graph()
    layouts = {"execute.packed", "execute.window", "execute.columns"}
    assert not layouts & graph["execute.chain"], graph["execute.chain"]
    implementations = {"execute.chain", "execute.functions", "plan.pattern", "trace.record"} | layouts
    assert not implementations & graph["execute.array"], graph["execute.array"]


def test_each_layer_imports_only_lower_layers():
    """ops <- execute <- trace, plan <- lazy: a module never imports a higher layer."""
    order = {"settings": 0, "ops": 0, "execute": 1, "trace": 2, "plan": 2, "lazy": 3}
    for module, deps in _graph().items():
        layer = order.get(module.split(".")[0])
        if layer is None:  # (the package itself and its top-level uses: optimize, special)
            continue
        for dep in deps:
            assert order[dep.split(".")[0]] <= layer, f"{module} imports {dep}"
