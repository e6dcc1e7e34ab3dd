"""The shape of the package, checked on its source (ast, nothing imported).

- No import circle between ``serkit``'s modules. Every import counts: at module level and
  inside functions (a lazy import still makes two modules know each other; it only moves
  the failure from import time to call time). Imports under ``if TYPE_CHECKING:`` do not
  count (they never run). An import names one module: ``from serkit.a.b import x`` is an
  edge to ``serkit.a.b`` (or to ``serkit.a.b.x`` when that is a module), not to the
  packages ``serkit`` and ``serkit.a`` above it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import serkit

ROOT = Path(serkit.__file__).parent


@dataclass
class Module:
    """One module of the package: its name, file, and the serkit modules it imports."""

    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    imports: dict[str, int] = field(default_factory=dict)  # module -> first line


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import below ``node``, except those under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _imports(other) if not isinstance(other, (ast.Import, ast.ImportFrom)) else [other]
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        else:
            yield from _imports(child)


def _base_of(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.name.split(".")
    if not module.is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def package_modules() -> dict[str, Module]:
    """Every module of ``serkit/`` with the serkit modules it imports."""
    modules: dict[str, Module] = {}
    for path in sorted(ROOT.rglob("*.py")):
        name, is_package = _module_name(path)
        modules[name] = Module(name, path, is_package, ast.parse(path.read_text(encoding="utf-8")))
    for module in modules.values():
        for node in _imports(module.tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _base_of(module, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target in modules and target != module.name:
                    module.imports.setdefault(target, node.lineno)
    return modules


def import_cycles(modules: dict[str, Module]) -> list[list[str]]:
    """The strongly connected components of the import graph with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for other in modules[name].imports:
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in on_stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == name:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in modules:
        if name not in index:
            visit(name)
    return found


def test_no_import_cycles() -> None:
    modules = package_modules()
    cycles = import_cycles(modules)
    lines = []
    for component in cycles:
        members = set(component)
        edges = [
            f"    {a} -> {b} (line {modules[a].imports[b]})"
            for a in component
            for b in modules[a].imports
            if b in members
        ]
        lines.append(f"  {', '.join(component)}:\n" + "\n".join(edges))
    assert not cycles, "import cycles in serkit/:\n" + "\n".join(lines)


def test_the_walker_counts_lazy_imports_and_skips_type_checking() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "import serkit.a\n"
        "if TYPE_CHECKING:\n"
        "    from serkit.b import B\n"
        "def f():\n"
        "    from serkit.c import c\n"
    )
    assert [ast.unparse(n) for n in _imports(tree)] == [
        "from typing import TYPE_CHECKING",
        "import serkit.a",
        "from serkit.c import c",
    ]
    assert "serkit.plugins" in package_modules()["serkit"].imports  # inside serkit.get_registry()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(modules: dict[str, Module]) -> list[str]:
    """Every place where a serkit module takes a private name (``_x``, not ``__x__``) of another one.

    Both ``from serkit.a import _x`` and ``m._x`` on a module ``m`` imported as a name
    (``import serkit.a as m``, ``from serkit import a``) count.
    """
    found: list[str] = []
    for module in modules.values():
        aliases: dict[str, str] = {}  # local name -> serkit module
        for node in _imports(module.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname and a.name in modules:
                        aliases[a.asname] = a.name
                continue
            base = _base_of(module, node)
            if base not in modules:
                continue
            for a in node.names:
                target = f"{base}.{a.name}"
                if target in modules:
                    aliases[a.asname or a.name] = target
                elif _private(a.name) and base != module.name:
                    found.append(f"{module.name} (line {node.lineno}): from {base} import {a.name}")
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _private(node.attr)
            ):
                found.append(f"{module.name} (line {node.lineno}): {aliases[node.value.id]}.{node.attr}")
    return found


def test_no_module_imports_a_private_name_of_another() -> None:
    found = private_imports(package_modules())
    assert not found, "private names used across serkit's modules:\n  " + "\n  ".join(found)


def test_the_private_name_check_sees_both_forms() -> None:
    def module(name: str, code: str) -> Module:
        return Module(name, Path(f"{name}.py"), False, ast.parse(code))

    modules = {
        "serkit.a": module("serkit.a", "_x = 1\n"),
        "serkit.b": module("serkit.b", "from serkit.a import _x, __doc__\nfrom serkit import a\ny = a._x\n"),
        "serkit": Module("serkit", Path("__init__.py"), True, ast.parse("")),
    }
    assert private_imports(modules) == [
        "serkit.b (line 1): from serkit.a import _x",
        "serkit.b (line 3): serkit.a._x",
    ]


#: The longest a function (or method) of serkit/ may be, in lines (decorators not counted).
MAX_FUNCTION_LINES = 100


def long_functions(modules: dict[str, Module], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``module.qualified.name (N lines)`` for every function longer than ``limit`` lines."""
    found: list[str] = []

    def visit(node: ast.AST, prefix: str, module: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lines = (child.end_lineno or child.lineno) - child.lineno + 1
                    if lines > limit:
                        found.append(f"{module}.{name} ({lines} lines)")
                visit(child, f"{name}.", module)
            else:
                visit(child, prefix, module)

    for module in modules.values():
        visit(module.tree, "", module.name)
    return found


def test_no_function_is_longer_than_100_lines() -> None:
    found = long_functions(package_modules())
    assert not found, f"functions longer than {MAX_FUNCTION_LINES} lines in serkit/:\n  " + "\n  ".join(found)
