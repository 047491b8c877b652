"""Dependencies point one way, no module imports itself back (lazy or not), and importing mmreward stays light."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = {"tools", "eval", "data_recipes", "launch", "tests"}
HEAVY = ("decord", "av", "open_clip", "deepspeed", "vllm", "flash_attn", "liger_kernel", "ray")


def _imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_library_imports_none_of_the_outside_folders():
    offenders = {}
    files = sorted((ROOT / "mmreward").rglob("*.py"))
    assert len(files) > 5
    for path in files:
        bad = _imported_top_levels(path) & OUTSIDE
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_the_layering_check_catches_an_offender(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom eval.run import main\nimport tools.make_tiny_vlm\n")
    assert _imported_top_levels(bad) & OUTSIDE == {"eval", "tools"}


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_mmreward_is_light():
    loaded = _modules_after("import mmreward")
    assert not loaded & {"torch", "transformers", *HEAVY}


def test_library_modules_pull_in_no_optional_heavy_backends():
    loaded = _modules_after(
        "import mmreward, mmreward.cli, mmreward.demo, mmreward.data.schema, mmreward.data.media, "
        "mmreward.data.synthetic, mmreward.models.tiny, mmreward.scoring, mmreward.models.reward_model, "
        "mmreward.models.yes_token, mmreward.models.clip, mmreward.evaluation.runner, mmreward.agent.loop, "
        "mmreward.agent.env, mmreward.agent.judge_scorer, mmreward.train.bt, mmreward.train.losses, "
        "mmreward.train.sft, mmreward.train.rft, mmreward.train.grpo"
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


# ---- import cycles: every import statement counts, including those inside functions ----

def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST):
    """Every node except the bodies of `if TYPE_CHECKING:` (never executed, so never a cycle)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path, package: str = "mmreward") -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its file (`from a import b` -> a.b if a module)."""
    files = {_module_name(p, root): p for p in (root / package).rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        out = set()
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    out.add(target)
        edges[name] = out
    return edges


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_cycle_check_sees_imports_inside_functions(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from toy.sub.b import B\n")
    (pkg / "a.py").write_text("def f():\n    from toy.sub import b\n    return b\n")
    (pkg / "sub" / "b.py").write_text("from .. import a\nB = 1\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy import a\n")
    edges = import_graph(tmp_path, "toy")
    assert edges["toy.a"] == {"toy.sub.b"} and edges["toy.sub.b"] == {"toy.a"} and edges["toy.c"] == set()
    assert import_cycles(edges) == [["toy.a", "toy.sub.b"]]


def test_no_import_cycles_at_all():
    cycles = import_cycles(import_graph(ROOT))
    assert cycles == [], f"import cycles (imports inside functions count): {cycles}"
