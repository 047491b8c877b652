"""Eval runs for the report tests: a head-model run on a VideoGen-RewardBench folder and a scripted-judge run.

Built once per session (conftest fixtures `report_head_run`, `report_judge_run`), shared by the HTML report
tests and the browser tests.
"""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

LABELS = ["A", "B", "same", "A", "B", "A", "same", "B"]
HOSTILE = '</script><img src=x onerror="window.__pwned=1">'


def videogen_folder(root: Path, media: Path) -> Path:
    """VideoGen-RewardBench layout: the official CSV columns and videos/ (three generated mp4s)."""
    (root / "videos").mkdir(parents=True)
    for i in range(3):
        shutil.copy(media / f"v{i}.mp4", root / "videos" / f"v{i}.mp4")
    header = ["path_A", "path_B", "A_model", "B_model", "prompt", "VQ", "MQ", "TA", "Overall", "fps_A",
              "num_frames_A", "fps_B", "num_frames_B"]
    with open(root / "videogen-rewardbench.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i, label in enumerate(LABELS):
            prompt = HOSTILE if i == 7 else f"a white square moving right, take {i}"
            writer.writerow([f"videos/v{i % 3}.mp4", f"videos/v{(i + 1) % 3}.mp4", "m1", "m2", prompt, label, "A",
                             "same", label, 10, 20, 10, 30])
    return root


def head_run(tmp: Path, media: Path, checkpoint: Path) -> Path:
    from mmreward.cli import main
    from mmreward.models.reward_model import RewardModel

    ckpt = tmp / "rm"
    RewardModel.build(checkpoint, dimensions=["VQ", "MQ", "TA"]).save_pretrained(ckpt)
    out = tmp / "head"
    code = main(["eval", "--benchmark", "videogen_rewardbench", "--data", str(videogen_folder(tmp / "vg", media)),
                 "--model", str(ckpt), "--out", str(out), "--no-progress"])
    assert code == 0
    return out


TOOL = '<tool_call>\n{{"name": "select_frames", "arguments": {{"video": {v}, "target_frames": [1, 10, 20]}}}}\n</tool_call>'


def policy(conversations, images):
    """A scripted judge: looks at video 1, then video 2 (the memory window evicts the first look), then prefers the
    longer video (consistent under swapping); on "clip 0" it answers "A" whatever the order (position-biased),
    and on "undecidable" it never writes a valid answer."""
    texts = []
    for conv in conversations:
        text = json.dumps(conv)
        looks = sum(1 for m in conv if m["role"] == "tool")
        if looks == 0:
            texts.append("<think>First look: video 1 seems smoother. Let me check more frames.</think>" + TOOL.format(v=1))
        elif looks == 1:
            texts.append("<think>Now video 2 at the same times.</think>" + TOOL.format(v=2))
        elif "undecidable" in text:
            texts.append("<think>I cannot tell them apart.</think> Both are fine I guess.")
        elif "clip 0" in text:
            texts.append('<think>The first one shown keeps the square sharp.</think>'
                         '<answer>{"VQ": "A", "MQ": "A", "TA": "B", "overall": "A"}</answer>')
        else:  # the longer video wins, whichever side it is shown on
            n1, n2 = (int(n) for n in re.findall(r"Video [12]: \d+ of its (\d+) frames", text)[:2])
            side = "A" if n1 > n2 else "B"
            texts.append(f'<think>Video {1 if side == "A" else 2} lasts longer and keeps moving.</think>'
                         f'<answer>{{"VQ": "{side}", "MQ": "{side}", "TA": "{side}", "overall": "{side}"}}</answer>')
    return texts


def judge_records(media: Path):
    from mmreward.data.schema import parse_record

    rows = [{"id": f"p{i}", "prompt": "undecidable pair" if i == 2 else f"a square moving right, clip {i}",
             "a": {"media": [{"type": "video", "path": f"v{i % 3}.mp4"}]},
             "b": {"media": [{"type": "video", "path": f"v{(i + 1) % 3}.mp4"}]},
             "label": "AB"[i % 2], "meta": {"category": "motion" if i % 2 else "static"}} for i in range(4)]
    return [parse_record(r, base_dir=media) for r in rows]


def judge_run(tmp: Path, media: Path, checkpoint: Path) -> Path:
    from transformers import AutoProcessor

    import mmreward.scoring
    from mmreward.agent.judge_scorer import JudgeConfig, JudgeScorer
    from mmreward.cli import main
    from mmreward.evaluation.benchmarks import BENCHMARKS, BenchmarkData, BenchmarkSpec

    records = judge_records(media)
    spec = BenchmarkSpec(loader=lambda source, options: BenchmarkData(name="toy_judge", kind="pairs",
                                                                       records=records),
                         description="toy", metrics=("accuracy_without_ties",), download="nowhere")
    judge = JudgeScorer(None, AutoProcessor.from_pretrained(checkpoint),
                        JudgeConfig(backbone="scripted", tools=["select_frames"], initial_frames=2, max_turns=3,
                                    memory_window=1, workspace_frames=32), generate_fn=policy)
    out = tmp / "judge"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(BENCHMARKS, "toy_judge", spec)
        mp.setattr(mmreward.scoring, "load_scorer", lambda *a, **kw: judge)
        code = main(["eval", "--benchmark", "toy_judge", "--data", "D", "--model", "scripted-judge", "--out",
                     str(out), "--no-progress", "--order", "both"])
    assert code == 0
    return out


def page_data(page: Path) -> tuple[dict, dict]:
    """The (data, media) JSON embedded in a report page."""
    html = page.read_text(encoding="utf-8")
    blocks = dict(re.findall(r'<script type="application/json" id="report-(data|media)">(.*?)</script>', html, re.S))
    return json.loads(blocks["data"]), json.loads(blocks["media"])
