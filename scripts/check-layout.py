#!/usr/bin/env python3
"""Checks that pipeline/src keeps its layers: no file imports one that imports it back, and no
folder imports a folder below it in the order of `lib.rs`'s "# Layout" (README's layout table).

Imports are read from every `crate::a::b::...` path outside comments (`use` lines and inline
paths alike) and from a `mod.rs`'s `pub use child::...` re-exports. A path resolves to the
deepest module file that exists. Exit 1, with each broken rule, if any.
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "pipeline" / "src"

# Top-level modules from the bottom layer up; a module may import its own folder and lower layers.
LAYERS = [
    {"clock", "config"},
    {"models", "fuzz_checks", "report"},
    {"telemetry"},
    {"kafka"},
    {"stages"},
    {"topology", "aggregate"},
    {"cli"},
]
LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}
# Not part of the library's layers: the binary and the global allocator.
OUTSIDE = {"main", "allocator", "lib"}


def module_of(path: pathlib.Path) -> tuple:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def resolve(segments: list, modules: dict):
    """The deepest existing module named by a prefix of `segments`."""
    for n in range(len(segments), 0, -1):
        if tuple(segments[:n]) in modules:
            return tuple(segments[:n])
    return None


def imports(path: pathlib.Path, modules: dict) -> set:
    found = set()
    me = module_of(path)
    for line in path.read_text().splitlines():
        code = line.split("//", 1)[0]
        for m in re.finditer(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)", code):
            target = resolve(m.group(1).split("::"), modules)
            if target and target != me:
                found.add(target)
        if path.name == "mod.rs":
            m = re.match(r"\s*pub use ([a-z_][a-z0-9_]*)::", code)
            if m and me + (m.group(1),) in modules:
                found.add(me + (m.group(1),))
    return found


def main() -> int:
    files = sorted(SRC.rglob("*.rs"))
    modules = {module_of(f): f for f in files}
    graph = {module_of(f): imports(f, modules) for f in files}
    problems = []

    for source, targets in sorted(graph.items()):
        top = source[0]
        if top in OUTSIDE:
            continue
        if top not in LAYER_OF:
            problems.append(f"{modules[source]}: top-level module `{top}` has no layer in scripts/check-layout.py")
            continue
        for target in sorted(targets):
            other = target[0]
            if other == top or other in OUTSIDE:
                continue
            if LAYER_OF.get(other, 99) > LAYER_OF[top]:
                problems.append(
                    f"{'::'.join(source)} imports {'::'.join(target)}: `{other}` is a layer above `{top}`"
                )

    # File-level circles: Tarjan's strongly connected components.
    index, low, stack, on_stack, counter = {}, {}, [], set(), [0]
    circles = []

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                circles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    for c in circles:
        problems.append("import circle: " + " <-> ".join("::".join(m) for m in c))

    for p in problems:
        print(p)
    if problems:
        print(f"check-layout: {len(problems)} problem(s) in {SRC}")
        return 1
    print(f"check-layout: {len(files)} files, {sum(map(len, graph.values()))} imports, no circle, layers kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
