"""Draw how utils/ is organised, from the code: ``.venv/bin/python -m tools.module_graph [--write]``.

Prints the README's "How the code is organised" section: a Mermaid graph of which module of utils/ imports which
(an import inside a function counts too: it is a dependency all the same) and a table with the first sentence of
each module's docstring. ``utils.model_spec`` names code by ``"module:attribute"`` references that it does not
import (the families' wrappers and builders); they are drawn as dashed arrows. With ``--write`` the section
replaces the one between the README's markers; ``tests/test_module_graph.py`` checks that the README holds what
this prints, and that the imports have no cycle.
"""

from __future__ import annotations

import argparse
import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "utils"
README = ROOT / "README.md"
START, END = "<!-- module graph: start (python -m tools.module_graph --write) -->", "<!-- module graph: end -->"
REFERENCE = re.compile(rf"^{PACKAGE}\.(\w+):\w+$")


def module_names() -> list[str]:
    return sorted(path.stem for path in (ROOT / PACKAGE).glob("*.py") if path.stem != "__init__")


@cache
def _tree(name: str) -> ast.Module:
    """The module's syntax tree, parsed once: the graph, the references, the table and the cycles all read it."""
    return ast.parse((ROOT / PACKAGE / f"{name}.py").read_text(encoding="utf-8"))


def imports(name: str) -> set[str]:
    """The modules of utils/ that ``name`` imports, anywhere in its code."""
    found = set()
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(f"{PACKAGE}."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith(f"{PACKAGE}."))
    return found & set(module_names())


def references(name: str) -> set[str]:
    """The modules of utils/ that ``name`` names in ``"module:attribute"`` strings without importing them: in its
    code, and for `utils.model_spec` in the families it defines (some of whose references are built from parts)."""
    strings = [node.value for node in ast.walk(_tree(name)) if isinstance(node, ast.Constant)]
    if name == "model_spec":
        strings += _family_references()
    return {match.group(1) for value in strings if isinstance(value, str) and (match := REFERENCE.match(value))}


def _family_references() -> list[str]:
    """Every string field of `utils.model_spec.FAMILIES` and of their parts."""
    from dataclasses import astuple

    from utils.model_spec import FAMILIES

    def strings(value) -> list[str]:
        if isinstance(value, str):
            return [value]
        return [text for item in value for text in strings(item)] if isinstance(value, tuple) else []

    return [text for family in FAMILIES for text in strings(astuple(family))]


def summary(name: str) -> str:
    """The first sentence of the module's docstring."""
    docstring = ast.get_docstring(_tree(name)) or ""
    return " ".join(docstring.split("\n\n")[0].split())


def cycles() -> list[list[str]]:
    """Every import cycle among utils/'s modules, each as the modules around it (empty when there is none)."""
    graph = {name: imports(name) for name in module_names()}
    found, done = [], set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            found.append(path[path.index(name) :])
            return
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in graph:
        visit(name, [])
    return found


def section() -> str:
    """The README's section: the graph, then one sentence per module."""
    lines = [START, "", "```mermaid", "flowchart LR"]
    for name in module_names():
        lines += [f"  {name} --> {target}" for target in sorted(imports(name))]
        lines += [f"  {name} -.-> {target}" for target in sorted(references(name) - imports(name))]
    lines += ["```", "", "| module | what it is |", "| --- | --- |"]
    lines += [f"| `{name}` | {summary(name).replace('|', '/')} |" for name in module_names()]
    return "\n".join([*lines, "", END])


def readme_with_section(readme: str) -> str:
    """``readme`` with the text between the markers replaced by `section`."""
    start, end = readme.index(START), readme.index(END) + len(END)
    return readme[:start] + section() + readme[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the README's section")
    args = parser.parse_args()
    if args.write:
        README.write_text(readme_with_section(README.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"written: {README}")
    else:
        print(section())
    for cycle in cycles():
        print("import cycle:", " -> ".join([*cycle, cycle[0]]))


if __name__ == "__main__":
    main()
