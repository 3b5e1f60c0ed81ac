"""fastnn's modules import each other without cycles (a cycle makes import order matter and
hides which module owns what). The one allowed pair: a model's save()/load_weights() call
fastnn.saving, whose loader builds models; both sides import the other inside functions."""
import ast
import os

import fastnn

ALLOWED = [{"fastnn.models", "fastnn.saving"}]


def module_graph():
    root = os.path.dirname(os.path.abspath(fastnn.__file__))
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                mod = "fastnn." + os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                files[mod.removesuffix(".__init__")] = path
    graph = {m: set() for m in files}
    for mod, path in files.items():
        package = mod if path.endswith("__init__.py") else mod.rsplit(".", 1)[0]
        with open(path) as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):  # function-level imports count too
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or "" if node.level == 0 else package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rsplit(".", 1)[0]
                if node.level and node.module:
                    base += "." + node.module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for t in targets:
                # a package importing its own submodules re-exports them: not a dependency back
                if t in files and t != mod and not mod.startswith(t + "."):
                    graph[mod].add(t)
    return graph


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_fastnn_modules_import_each_other_without_cycles():
    found = [c for c in cycles(module_graph()) if c not in ALLOWED]
    assert not found, f"import cycles: {[sorted(c) for c in found]}"


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
