"""An import-layer checker: which package of a source tree may import which (used by test_layers.py).

A contract is a list of layers, lowest first; each layer is a list of module prefixes (a package
or a module; ``=name`` is the module ``name`` alone, for a root package that re-exports). A
module may import its own package and anything in a lower layer; modules of two different
packages in the same layer may not import each other. Every import counts: at module
level, inside functions (lazy imports) and under ``if TYPE_CHECKING:``, since each states a
dependency; the few that are allowed to point upward are listed as exceptions, each with its
reason, and an exception that no longer matches an import is reported too (so the list shrinks).
``private`` names packages that only their parent may import. Separately, the module-level
imports (those that run when a module is imported) must form no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Import:
    """One import statement: ``source`` imports ``target`` at ``line``; ``when`` is top, lazy or typing."""

    source: str
    target: str
    line: int
    when: str


@dataclass(frozen=True)
class Contract:
    """Layers (lowest first), upward imports allowed as exceptions, and private packages.

    Attributes
    ----------
    layers
        Module prefixes per layer, lowest first.
    exceptions
        ``(importer, imported)`` module pairs allowed to break the layering, each with its reason.
    private
        Package -> the only package (prefix) whose modules may import it.
    """

    layers: Sequence[Sequence[str]]
    exceptions: dict[tuple[str, str], str] = field(default_factory=dict)
    private: dict[str, str] = field(default_factory=dict)


def module_names(root: Path) -> dict[str, Path]:
    """Every module under the package directory ``root``, by dotted name."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, when: str) -> Iterator[tuple[ast.AST, str]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _walk(child, "lazy")
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, "typing" if when == "top" else when
                yield from _walk(stmt, "typing" if when == "top" else when)
            for stmt in child.orelse:
                yield stmt, when
                yield from _walk(stmt, when)
        else:
            yield child, when
            yield from _walk(child, when)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """The imports of module ``name`` that point inside the tree (``from pkg import sub``: ``pkg.sub``)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node, when in _walk(tree, "top"):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                up = up[: len(up) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in dict.fromkeys(targets):
            if target in modules:
                out.append(Import(name, target, getattr(node, "lineno", 0), when))
    return out


def _layer(module: str, layers: Sequence[Sequence[str]]) -> tuple[int, str] | None:
    """The layer and prefix of ``module`` (the longest prefix; ``=name`` matches ``name`` only)."""
    best: tuple[int, str] | None = None
    for k, prefixes in enumerate(layers):
        for p in prefixes:
            hit = module == p[1:] if p.startswith("=") else _covers(p, module)
            if hit and (best is None or len(p) > len(best[1])):
                best = (k, p)
    return best


def _covers(prefix: str, module: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def check(root: Path, contract: Contract) -> list[str]:
    """Every breach of ``contract`` in the package at ``root``, one line each (empty: none)."""
    modules = module_names(root)
    found = [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]
    problems = []
    used: set[tuple[str, str]] = set()
    for imp in found:
        where = f"{modules[imp.source].relative_to(root.parent)}:{imp.line}"
        src, dst = _layer(imp.source, contract.layers), _layer(imp.target, contract.layers)
        if src is None or dst is None:
            unplaced = imp.source if src is None else imp.target
            problems.append(f"{where}: {unplaced} is in no layer of the contract")
            continue
        for package, owner in contract.private.items():
            if _covers(package, imp.target) and not _covers(owner, imp.source):
                problems.append(f"{where}: {imp.source} imports {imp.target}, which only {owner} may import")
        same_package = src[1] == dst[1]
        if same_package or dst[0] < src[0]:
            continue
        key = (imp.source, imp.target)
        if key in contract.exceptions:
            used.add(key)
            continue
        how = "upward" if dst[0] > src[0] else "sideways"
        problems.append(
            f"{where}: {imp.source} ({src[1]}) imports {imp.target} ({dst[1]}) {how} ({imp.when} import)"
        )
    for key in contract.exceptions.keys() - used:
        problems.append(
            f"exception {key[0]} -> {key[1]} matches no import any more; remove it from the contract"
        )
    problems += [f"import cycle at import time: {' -> '.join(c)}" for c in cycles(found)]
    return problems


def cycles(found: Sequence[Import]) -> list[list[str]]:
    """Cycles among the module-level imports (each cycle once, starting at its smallest module)."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        if imp.when == "top" and imp.source != imp.target:
            graph.setdefault(imp.source, set()).add(imp.target)
    out: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                k = cycle.index(min(cycle))
                canon = tuple(cycle[k:] + cycle[:k])
                if canon not in seen:
                    seen.add(canon)
                    out.append([*canon, canon[0]])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return out
