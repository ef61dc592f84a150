"""Code-structure figures of ``ttm_jax/`` and ``theory/`` at a git revision.

Reads the Python files of the revision straight from git (``git show REV:path``),
so any commit can be measured without checking it out, and prints a Markdown
table: lines (all, and non-blank non-comment), modules, the longest module and
function, import cycles between our modules, private names imported from
another module, and the size of ``ttm_jax.__all__``.

Run:  python benchmarks/code_structure.py                         # the working tree
      python benchmarks/code_structure.py --rev 7b701df           # any commit
      python benchmarks/code_structure.py --rev 7b701df aa6d598   # one column each
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ttm_jax", "theory")


def _sources(rev: str | None) -> dict[str, str]:
    """``{path: text}`` of every ``.py`` file under the packages."""
    if rev is None:
        return {p.relative_to(ROOT).as_posix(): p.read_text()
                for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "--", *PACKAGES],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {n: subprocess.run(["git", "show", f"{rev}:{n}"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
            for n in names if n.endswith(".py")}


def _module(path: str) -> str:
    parts = path[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, modules: set[str]) -> list[tuple[str, list[str]]]:
    """``(target module, imported names)`` for each import of one of ``modules``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name in modules]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in PACKAGES:
                continue
            names = [a.name for a in node.names]
            # "from pkg import sub" imports the submodule when there is one.
            subs = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in modules]
            rest = [n for n in names if f"{node.module}.{n}" not in modules]
            out += [(s, []) for s in subs]
            if rest and node.module in modules:
                out.append((node.module, rest))
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def _all_size(tree: ast.Module) -> int:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return len(ast.literal_eval(node.value))
    return 0


def measure(rev: str | None) -> dict:
    sources = _sources(rev)
    modules = {_module(p): p for p in sources}
    trees = {p: ast.parse(text) for p, text in sources.items()}
    lines = {pkg: sum(t.count("\n") for p, t in sources.items() if p.startswith(pkg + "/"))
             for pkg in PACKAGES}
    code = {pkg: sum(1 for p, t in sources.items() if p.startswith(pkg + "/")
                     for ln in t.splitlines() if ln.strip() and not ln.strip().startswith("#"))
            for pkg in PACKAGES}
    longest_module = max(sources, key=lambda p: sources[p].count("\n"))
    functions = [(n.end_lineno - n.lineno + 1, f"{p}:{n.name}")
                 for p, t in trees.items() for n in ast.walk(t)
                 if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    graph, private = {}, []
    for p, t in trees.items():
        src = _module(p)
        for target, names in _imports(t, set(modules)):
            if target != src:
                graph.setdefault(src, set()).add(target)
            private += [f"{src} ← {target}.{n}" for n in names if n.startswith("_")]
    return {
        "revision": rev or "working tree",
        "lines": lines,
        "code_lines": code,
        "modules": {pkg: sum(1 for p in sources if p.startswith(pkg + "/")) for pkg in PACKAGES},
        "longest_module": (longest_module, sources[longest_module].count("\n")),
        "longest_function": max(functions),
        "cycles": _cycles(graph),
        "private_imports": sorted(set(private)),
        "public_names": _all_size(trees["ttm_jax/__init__.py"]),
    }


def rows(m: dict) -> list[tuple[str, str]]:
    """``(label, cell)`` per figure of one :func:`measure`, in the table's order."""
    out = [(f"lines in {pkg}/ (non-blank, non-comment)",
            f"{m['lines'][pkg]:,} ({m['code_lines'][pkg]:,}) in {m['modules'][pkg]} modules")
           for pkg in PACKAGES]
    return out + [
        ("longest module", f"{m['longest_module'][0]} ({m['longest_module'][1]} lines)"),
        ("longest function", f"{m['longest_function'][1]} ({m['longest_function'][0]} lines)"),
        ("import cycles", f"{len(m['cycles'])}" + (
            ": " + "; ".join(" ↔ ".join(c) for c in m["cycles"]) if m["cycles"] else "")),
        ("private names imported from another module", f"{len(m['private_imports'])}" + (
            ": " + ", ".join(m["private_imports"]) if m["private_imports"] else "")),
        ("names in ttm_jax.__all__", f"{m['public_names']}"),
    ]


def table(measures: list[dict]) -> str:
    """A Markdown table with one column per :func:`measure`."""
    cols = [rows(m) for m in measures]
    lines = ["| | " + " | ".join(m["revision"] for m in measures) + " |",
             "|---|" + "---|" * len(measures)]
    lines += ["| " + " | ".join([label, *(c[i][1] for c in cols)]) + " |"
              for i, (label, _) in enumerate(cols[0])]
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", nargs="*", default=None,
                    help="git revisions, one column each (default: the working tree)")
    measures = [measure(r) for r in (ap.parse_args(argv).rev or [None])]
    print(table(measures), end="")
    return measures

if __name__ == "__main__":
    main()
