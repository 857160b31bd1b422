"""design.md's layers, read from the source with ast (nothing is imported): the package's
import graph has no circle, theory/ never imports torch, and no analysis module (theory,
bridge, predictors, diagnostics, runs) imports figures or the CLI. Every import counts,
also one inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "linear_ssl"
ANALYSIS = ("theory", "bridge", "predictors", "diagnostics", "runs")
PRESENTATION = ("figures", "cli")
DEPRECATED = ("compare", "plots", "plots_runs")  # re-export shims of one release


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(path: Path, name: str | None = None) -> set[str]:
    """Absolute names a module (named `name`, default from its path) imports; `from pkg
    import sub` counts as pkg.sub when sub is a module of this package, else as pkg."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return found


def internal_graph() -> dict[str, set[str]]:
    return {name: {m for m in imports_of(p) if m in MODULES} for name, p in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def in_layer(module: str, layers: tuple[str, ...]) -> bool:
    return any(module == f"linear_ssl.{x}" or module.startswith(f"linear_ssl.{x}.") for x in layers)


def test_find_cycle_and_imports_of_see_what_they_should(tmp_path):
    """The checker itself: a circle is found, a chain is not; a relative and a function-level
    import both count."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    probe = ROOT / "theory" / "modes.py"
    assert "linear_ssl.theory.params" in imports_of(probe)
    fake = tmp_path / "m.py"
    fake.write_text("from .params import Hyper\n\n\ndef f():\n    import torch\n")
    assert imports_of(fake, "linear_ssl.theory.fake") == {"linear_ssl.theory.params", "torch"}


def test_package_has_no_import_circle():
    assert find_cycle(internal_graph()) is None


@pytest.mark.parametrize("name", sorted(m for m in MODULES if in_layer(m, ("theory",))))
def test_theory_never_imports_torch(name):
    torchy = {m for m in imports_of(MODULES[name]) if m == "torch" or m.startswith("torch.")}
    assert not torchy, f"{name} imports {sorted(torchy)}: theory/ must work without torch"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if in_layer(m, ANALYSIS)))
def test_analysis_never_imports_figures_or_cli(name):
    up = {m for m in internal_graph()[name] if in_layer(m, PRESENTATION)}
    assert not up, f"{name} imports {sorted(up)}: analysis modules must not import figures/cli"


def test_nothing_but_the_shims_imports_the_deprecated_modules():
    users = {
        name: sorted(m for m in deps if in_layer(m, DEPRECATED))
        for name, deps in internal_graph().items()
        if not in_layer(name, DEPRECATED)
    }
    assert {k: v for k, v in users.items() if v} == {}
