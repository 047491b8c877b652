"""Dependencies point one way, and importing mmreward stays light."""

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
