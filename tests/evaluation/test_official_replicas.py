"""`mmreward eval` reports the official number: end-to-end runs checked against replicas of the official scripts.

Each benchmark is run through the CLI on a fixture in its published layout, scored by a scripted scorer (a judge
whose verdicts, parse failures and media failures are drawn per record and repeat from a fixed seed, or a
reward model whose scores are a fixed function of the candidate, with ties). The replica then recomputes the
official number *independently* from `samples.jsonl` and the benchmark file, following the official script
step by step (VL-RewardBench `cal.py`, Multimodal RewardBench `scripts/2_get_accuracy.py`, GenAI-Bench
`inference.py` `parse_response`, MM-RLHF `get_acc.py`, VideoAlign `eval_videogen_rewardbench.py` +
`calc_accuracy.py`), and `results.json` must equal it. None of the replicas call the package's metric code.
Records whose media failed never reach the official scripts (their inference would crash), so the replicas
leave them out, and the runner must report them.
"""

import csv
import io
import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from PIL import Image

import mmreward.scoring
from mmreward.cli import main
from mmreward.data.schema import Candidate, PreferencePair
from mmreward.scoring import ScoreResult

VALUE = {"A": (1.0, 0.0), "B": (0.0, 1.0), "tie": (0.5, 0.5)}
FLIP = {"A": "B", "B": "A", "tie": "tie"}


class ScriptedScorer:
    """A judge (verdict per record and call, from a seed) or a reward model (score per candidate, from a seed).

    Judge: each call draws "chosen" (the human-preferred shown side), "rejected", "tie" or "unparsed" with
    `weights`, or "first" (always the first shown candidate) when `position_bias`. Reward model: per candidate
    and dimension a score in {-1.0, -0.9, ..., 1.0}, so ties occur; the overall score is the sum (VideoAlign).
    Ids in `fail` fail like an undecodable video.
    """

    def __init__(self, kind="judge", weights=(5, 2, 1, 2), fail=(), dimensions=("overall",), seed=0):
        self.kind, self.weights, self.fail, self.seed = kind, weights, set(fail), seed
        self.dimensions = list(dimensions)
        self.calls = Counter()
        self.contract = None

    def _candidate_scores(self, candidate) -> dict:
        key = candidate.text if candidate.text is not None else "|".join(str(m.path) for m in candidate.media)
        return {d: random.Random(f"{self.seed}|{key}|{d}").randint(-10, 10) / 10 for d in self.dimensions}

    def score(self, records, **kwargs):
        out = []
        for r in records:
            base = r.id
            if base in self.fail:
                out.append(ScoreResult(id=r.id, kind="pair", error=f"{base}: not a readable video (corrupt)"))
                continue
            if self.kind != "judge":
                a, b = self._candidate_scores(r.a), self._candidate_scores(r.b)
                scores = {d: [a[d], b[d]] for d in self.dimensions}
                out.append(ScoreResult(id=r.id, kind="pair", score_a=sum(a.values()), score_b=sum(b.values()),
                                       scores=scores))
                continue
            rng = random.Random(f"{self.seed}|{base}|{self.calls[base]}")
            self.calls[base] += 1
            outcome = rng.choices(("chosen", "rejected", "tie", "unparsed"), self.weights)[0]
            if outcome == "unparsed":
                out.append(ScoreResult(id=r.id, kind="pair", error="parse failure: no <answer> block"))
                continue
            side = {"chosen": r.label, "rejected": FLIP[r.label], "tie": "tie"}[outcome]
            if side == "tie" and outcome == "rejected":
                side = rng.choice("AB")
            a, b = VALUE[side]
            out.append(ScoreResult(id=r.id, kind="pair", score_a=a, score_b=b, preferred=side,
                                   scores={"overall": [a, b]}))
        return out


@pytest.fixture
def use_scorer(monkeypatch):
    """Make `mmreward eval` load the given scripted scorer instead of a checkpoint."""
    def install(scorer):
        monkeypatch.setattr(mmreward.scoring, "load_scorer", lambda *a, **kw: scorer)
        return scorer

    return install


def _eval(benchmark, data, out, *flags):
    assert main(["eval", "--benchmark", benchmark, "--data", str(data), "--model", "scripted", "--out", str(out),
                 "--no-progress", "--on-error", "skip", *flags]) == 0
    results = json.loads((out / "results.json").read_text())
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return results, samples


def _png(path: Path, color=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 3), color).save(path)


# ======================================================================================= VL-RewardBench

VLRB_PREFIXES = ("hallucination_pair-", "RLAIF-V-", "RLHF-V-", "mathverse_", "mmmu_pro_test_Math_",
                 "wildvision-battle-", "politics-", "svit-")


@pytest.fixture(scope="module")
def vlrb_dir(tmp_path_factory):
    """A 1,250-row-mirror-style JSON (relative image paths) with every id prefix and both rankings."""
    root = tmp_path_factory.mktemp("vlrb")
    rows = []
    for i in range(48):
        item_id = f"{VLRB_PREFIXES[i % len(VLRB_PREFIXES)]}{i}"
        _png(root / "images" / f"{item_id}.png")
        rows.append({"id": item_id, "query": f"<image>\nquestion {i}", "response": [f"first {i}", f"second {i}"],
                     "image": f"images/{item_id}.png", "human_ranking": [1, 0] if i % 7 == 3 else [0, 1],
                     "models": ["m1", "m2"], "judge": "human", "rationale": "", "query_source": "",
                     "ground_truth": ""})
    (root / "data.json").write_text(json.dumps(rows))
    return root


def cal_py_replica(rows: list[dict], samples: list[dict], k: int) -> dict:
    """VL-RewardBench `cal.py` step by step on the inference lines our samples stand for.

    Each sample is one line of the inference file: `meta.random_number` 0 when shown as given, 1 when swapped;
    the judge's text names "Answer N" (N = shown position of the candidate it preferred) or matches nothing.
    """
    by_id = {row["id"]: row for row in rows}
    lines = []
    for sample_row in samples:
        item = by_id[sample_row["id"]]
        for s in sample_row["samples"]:
            if s["error"] and "parse failure" not in s["error"]:
                continue  # the media failed: no inference line
            random_number = 0 if s["order"] == "given" else 1
            if s["preferred"] in ("A", "B"):
                position = 1 if (s["preferred"] == "A") == (random_number == 0) else 2
                text = f"**Overall Judgment**: Answer {position} is better."
            else:
                text = "Both answers have merits; I cannot decide."
            lines.append({"id": item["id"], "query": item["query"], "response": item["response"],
                          "ranking": item["human_ranking"],
                          "meta": {"random_number": random_number, "filter_choice": text}})
    random.seed(1234)  # cal.py main()
    for i in range(len(lines)):  # cal.py shuffle_data
        j = random.randint(0, len(lines) - 1)
        lines[i], lines[j] = lines[j], lines[i]
    pattern = r"(?:Overall Judgment|Therefore)\s*.*\s*-*\s*Answer\s*(\d+)\s*is\s*(?:the\s*)?(?:slightly\s*)?better"
    distribution = {}
    for item in lines:
        key = item["id"] + item["query"] + "\t".join(sorted(item["response"]))
        rejected = item["ranking"].index(1 if item["meta"]["random_number"] == 0 else 0) + 1
        match = re.search(pattern, item["meta"]["filter_choice"].replace("\n", "").replace("*", ""), re.IGNORECASE)
        status = "doesntMatch" if not match else ("reject" if int(match.group(1)) == rejected else "agree")
        entry = distribution.setdefault(key, {"agree": 0, "reject": 0, "doesntMatch": 0, "id": item["id"]})
        if sum(entry[x] for x in ("agree", "reject", "doesntMatch")) >= k:
            continue
        entry[status] += 1
    group_of = {"RLAIF": "hallucination", "RLHF": "hallucination", "hallucination": "hallucination",
                "mathverse": "reasoning", "mmmu": "reasoning", "wildvision": "general"}
    correct, total = defaultdict(int), defaultdict(int)
    for entry in distribution.values():
        n = entry["agree"] + entry["reject"] + entry["doesntMatch"]
        cls = ("agree" if entry["agree"] > n / 2 else "reject" if entry["reject"] > n / 2 else "other")
        group = group_of.get(re.split(r"[_-]", entry["id"], maxsplit=1)[0], "general")
        correct[group] += cls == "agree"
        total[group] += cls in ("agree", "reject")
    tasks = ["reasoning", "hallucination", "general"]
    return {"overall": sum(correct[t] for t in tasks) / sum(total[t] for t in tasks),
            "macro": sum(correct[t] / total[t] for t in tasks) / 3,
            **{t: correct[t] / total[t] for t in tasks}}


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_vl_rewardbench_equals_cal_py(vlrb_dir, tmp_path, use_scorer, k):
    use_scorer(ScriptedScorer(fail={"RLHF-V-2"}, seed=k))
    results, samples = _eval("vl_rewardbench", vlrb_dir / "data.json", tmp_path / "out", "--k", str(k),
                             "--order", "random")
    assert results["protocol"] | {"vote": None} == {"order": "random", "k": k, "seed": 0, "unparsed": "vote",
                                                    "vote": None}
    rows = json.loads((vlrb_dir / "data.json").read_text())
    expected = cal_py_replica(rows, samples, k)
    got = results["metrics"]["vlrb"]
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    # The fixture exercises what made the numbers drift: unparsed samples, split votes, a media failure.
    assert results["metrics"]["unparsed"] + got["excluded"] > 0
    assert results["failures"]["media"]["count"] == 1 and results["metrics"]["failed"] == 1
    assert results["failures"]["media"]["examples"][0]["id"] == "RLHF-V-2"
    assert "1 media failures" in (tmp_path / "out" / "results.md").read_text()


def test_vl_rewardbench_rule_and_order_are_settable_and_recorded(vlrb_dir, tmp_path, use_scorer):
    use_scorer(ScriptedScorer())
    results, samples = _eval("vl_rewardbench", vlrb_dir / "data.json", tmp_path / "o", "--k", "3", "--order",
                             "both", "--unparsed", "exclude", "--seed", "7")
    assert {k: results["protocol"][k] for k in ("order", "k", "seed", "unparsed")} == {
        "order": "both", "k": 3, "seed": 7, "unparsed": "exclude"}
    assert results["config"]["unparsed"] == "exclude"
    assert all(len(s["samples"]) == 6 for s in samples)  # 3 repeats x 2 orders, each kept in samples.jsonl


# ============================================================================== Multimodal RewardBench

MMRB_CATEGORIES = [("nocaps_{}", "open_generation/correctness_task"), ("visitbench_{}", "open_generation/"
                   "preference_task"), ("pairs_{}", "safety"), ("hateful_{}", "safety"), ("mathvista_{}",
                   "reasoning"), ("emma_{}", "reasoning"), ("mmmu_{}", "knowledge"), ("seed_{}", "vqa")]


@pytest.fixture(scope="module")
def mmrb_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("mmrb")
    rows = []
    for i in range(40):
        pattern, category = MMRB_CATEGORIES[i % len(MMRB_CATEGORIES)]
        item_id = pattern.format(i)
        _png(repo / "data" / "images" / f"{item_id}.png")
        rows.append({"ID": item_id, "Image": f"images/{item_id}.png", "Text": f"question {i}",
                     "Output1": f"one {i}", "Output2": f"two {i}", "Better": "Output2" if i % 3 else "Output1",
                     "Category": category})
    (repo / "data" / "all_data.json").write_text(json.dumps(rows))
    return repo


def get_accuracy_replica(rows: list[dict], samples: list[dict]) -> tuple[dict, int]:
    """`2_get_accuracy.py` on the answers file our k = 1 samples stand for (judge text ends [[A]] / [[B]])."""
    by_id = {row["ID"]: row for row in rows}
    answers = []
    for s in samples:
        if s["failure"] == "media":
            continue
        verdict = s["samples"][0]["preferred"]
        text = {"A": "Final verdict: [[A]]", "B": "Final verdict: [[B]]"}.get(verdict, "They are equally good.")
        row = by_id[s["id"]]
        answers.append({"ID": row["ID"], "Label": "B" if row["Better"] == "Output2" else "A", "output": text,
                        "Meta": {"Category": row["Category"]}})
    accs = defaultdict(list)
    random.seed(123)
    guessed = 0
    for ex in answers:
        if "[[A]]" in ex["output"]:
            pred = "A"
        elif "[[B]]" in ex["output"]:
            pred = "B"
        else:
            pred = "A" if random.random() < 0.5 else "B"
            guessed += 1
        acc = int(pred == ex["Label"])
        accs["all"].append(acc)
        category = ex["Meta"]["Category"]
        if category == "safety":
            category = "safety/bias" if ex["ID"].lower().startswith("pairs") else "safety/toxicity"
        elif category == "reasoning":
            category = "reasoning/math" if ex["ID"].lower().startswith("math") else "reasoning/coding"
        accs[category].append(acc)
    return {task: sum(v) / len(v) for task, v in accs.items()}, guessed


def test_multimodal_rewardbench_equals_2_get_accuracy(mmrb_repo, tmp_path, use_scorer):
    use_scorer(ScriptedScorer(weights=(4, 2, 2, 3), fail={"emma_5"}))
    results, samples = _eval("multimodal_rewardbench", mmrb_repo, tmp_path / "o")
    rows = json.loads((mmrb_repo / "data" / "all_data.json").read_text())
    expected, guessed = get_accuracy_replica(rows, samples)
    got = results["metrics"]["mmrb"]
    assert {task: got[task] for task in expected} == pytest.approx(expected, abs=1e-12)
    assert got["guessed"] == guessed > 0  # unparsed verdicts and ties are kept and guessed, not dropped
    assert got["counts"]["all"] == len(rows) - 1 and results["failures"]["media"]["count"] == 1


# ========================================================================================== GenAI-Bench

GENAI_VOTES = ("leftvote", "rightvote", "tievote", "bothbad_vote")


@pytest.fixture(scope="module")
def genai_repo(tmp_path_factory):
    """The HF layout: image_generation/test_v1-*.parquet with embedded images."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = tmp_path_factory.mktemp("genai")
    rows = []
    for i in range(32):
        images = []
        for side in range(2):
            buf = io.BytesIO()
            Image.new("RGB", (4, 4), (i * 7 % 255, side * 100, 50)).save(buf, format="PNG")
            images.append({"bytes": buf.getvalue(), "path": None})
        rows.append({"prompt": f"prompt {i}", "left_model": "m1", "left_image": images[0], "right_model": "m2",
                     "right_image": images[1], "vote_type": GENAI_VOTES[(i * 5) % 4 if i % 6 else 2]})
    (repo / "image_generation").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), repo / "image_generation" / "test_v1-00000-of-00001.parquet")
    return repo


def parse_response_replica(response: str, human_vote: str) -> bool:
    """GenAI-Bench `inference.py` `parse_response`: the greedy `[[...]]` match against the accepted votes."""
    model_vote = re.search(r"\[\[.*\]\]", response)
    if model_vote is None:
        return False
    model_vote = model_vote.group()
    accepted = {"leftvote": ("[[A>>B]]", "[[A>B]]"), "rightvote": ("[[B>>A]]", "[[B>A]]"),
                "tievote": ("[[A=B]]", "[[A=B=Good]]"), "bothbad_vote": ("[[A=B]]", "[[A=B=Bad]]")}
    return model_vote in accepted[human_vote]


@pytest.mark.parametrize("k", [1, 3])
def test_genai_bench_judge_equals_inference_py(genai_repo, tmp_path, use_scorer, k):
    use_scorer(ScriptedScorer(fail={"4"}, seed=k))
    results, samples = _eval("genai_bench_image", genai_repo, tmp_path / "o", "--k", str(k))
    correct = []
    for s in samples:
        if s["failure"] == "media":
            continue
        # The k verdicts combine by majority over the parsed ones (the suite's unparsed rule "exclude"); the
        # official script has k = 1, where this is the verdict itself.
        parsed = [x["preferred"] for x in s["samples"] if x["preferred"] is not None]
        top, count = Counter(parsed).most_common(1)[0] if parsed else (None, 0)
        verdict = None if not parsed else top if count * 2 > len(parsed) else "tie"
        response = {"A": "Model A is better: [[A>B]]", "B": "Model B is better: [[B>A]]",
                    "tie": "Tie, relatively the same: [[A=B]]"}.get(verdict, "I cannot judge these images.")
        correct.append(parse_response_replica(response, s["vote_type"]))
    judge = results["metrics"]["genai_judge"]
    assert judge["accuracy"] == pytest.approx(sum(correct) / len(correct), abs=1e-12)
    assert judge["items"] == len(correct) == 31
    assert results["scorer"] == "judge" and "not_applicable" not in results["metrics"]


def test_genai_bench_reward_model_keeps_the_reward_model_forms(genai_repo, tmp_path, use_scorer):
    use_scorer(ScriptedScorer(kind="head"))
    results, samples = _eval("genai_bench_image", genai_repo, tmp_path / "o")
    metrics = results["metrics"]
    assert "genai_judge" not in metrics and set(metrics["not_applicable"]) == {"genai_judge"}
    # "diff" (MJ-Video strict): non-tie votes only, a model tie is wrong.
    decided = [s for s in samples if s["vote_type"] in ("leftvote", "rightvote")]
    hits = [(s["margin"] > 0) if s["vote_type"] == "leftvote" else (s["margin"] < 0) for s in decided]
    assert metrics["genai_rm"]["diff"] == pytest.approx(sum(hits) / len(hits))


# ================================================================================ MM-RLHF-RewardBench

def _mmrlhf_rows():
    rows = []
    for g in range(10):
        kind = ("mcq/{}.png", "long/{}.png", "short/{}.png", "safety/{}.jpg", "video/clip{}")[g % 5]
        for j in range(2 + g % 3):
            path = kind.format(g)
            rows.append({"id": f"p{g}", ("video" if "video" in kind else "image"): path, "prompt": f"q{g}",
                         "chosen": f"good {g}.{j}", "rejected": f"bad {g}.{j}", "chosen_reason": "",
                         "rejected_reason": ""})
    return rows


@pytest.mark.parametrize("layout", ["images/video/<clip>", "images/<clip> (HF)"])
def test_mm_rlhf_equals_get_acc_py(tmp_path, use_scorer, layout):
    root = tmp_path / "mmrlhf"
    rows = _mmrlhf_rows()
    for row in rows:
        if "image" in row:
            _png(root / "images" / row["image"])
        else:
            clip = row["video"] if layout.startswith("images/video") else row["video"].removeprefix("video/")
            for f in range(3):
                _png(root / "images" / clip / f"frame_{f}.jpg")
    (root / "mm_reward_bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    use_scorer(ScriptedScorer(kind="head", seed=3))
    results, samples = _eval("mm_rlhf_rewardbench", root, tmp_path / "o")
    # get_acc.py, line by line, on the output file: the benchmark line plus "rewards" [r_chosen, r_rejected].
    items = [{**row, "rewards": s["samples"][0]["overall"]} for row, s in zip(rows, samples)]
    keywords = ["mcq", "long", "short", "safety", "video"]
    stats = {kw: {"accuracy": 0, "acc_plus": 0, "total": 0} for kw in keywords}
    overall = {"accuracy": 0, "acc_plus": 0, "total": 0}
    id_to_items = defaultdict(list)
    for item in items:
        path = item.get("image", "") or item.get("video", "")
        id_to_items[item["id"]].append(item)
        for kw in keywords:
            if kw in path:
                stats[kw]["total"] += 1
                break
        overall["total"] += 1
    for item_list in id_to_items.values():
        all_correct = True
        for item in item_list:
            correct = item["rewards"][0] > item["rewards"][1]
            for kw in keywords:
                if kw in item.get("image", "") or kw in item.get("video", ""):
                    if correct:
                        stats[kw]["accuracy"] += 1
                    else:
                        all_correct = False
                    break
            if correct:
                overall["accuracy"] += 1
            else:
                all_correct = False
        if all_correct:
            for kw in keywords:
                if any(kw in it.get("image", "") or kw in it.get("video", "") for it in item_list):
                    stats[kw]["acc_plus"] += 1
                    break
            overall["acc_plus"] += 1
    got = results["metrics"]["mmrlhf"]
    assert got["acc"] == pytest.approx(overall["accuracy"] / overall["total"])
    assert got["acc_plus"] == pytest.approx(overall["acc_plus"] / len(id_to_items))
    for kw, st in stats.items():
        having = [i for i, its in id_to_items.items() if any(kw in (it.get("image", "") + it.get("video", ""))
                                                             for it in its)]
        assert got[f"acc/{kw}"] == pytest.approx(st["accuracy"] / st["total"]), kw
        assert got[f"acc_plus/{kw}"] == pytest.approx(st["acc_plus"] / len(having)), kw
    assert got["counts"]["video"] == 5  # the frame folders load in this layout and count as video


# =============================================================================== VideoGen-RewardBench

@pytest.fixture(scope="module")
def videogen_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("videogen")
    labels = ("A", "B", "same", "")
    header = ["path_A", "path_B", "A_model", "B_model", "prompt", "VQ", "MQ", "TA", "Overall", "fps_A",
              "num_frames_A", "fps_B", "num_frames_B"]
    with open(root / "videogen-rewardbench.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        rng = random.Random(11)
        for i in range(40):
            a, b = f"videos/v{i % 9}.mp4", f"videos/v{(i * 4 + 1) % 9}.mp4"
            cells = [rng.choices(labels, (4, 4, 2, 1))[0] for _ in range(4)]
            writer.writerow([a, b, "m1", "m2", f"prompt {i % 5}", *cells, 8, 16, 8, 16])
    (root / "videos").mkdir()
    for i in range(9):
        (root / "videos" / f"v{i}.mp4").write_bytes(b"stand-in")  # the scripted scorer never decodes
    return root


def calc_accuracy_replica(h, m):
    """VideoAlign `calc_accuracy.py`: (with ties, without ties) exactly as written there."""
    def suff_stats(h, m, epsilon):
        C = D = Th = Tm = Thm = 0
        for hi, mi in zip(h, m):
            if hi == 0 and abs(mi) <= epsilon:
                Thm += 1
            elif hi == 0:
                Th += 1
            elif abs(mi) <= epsilon:
                Tm += 1
            elif hi * mi > 0:
                C += 1
            else:
                D += 1
        return C, D, Th, Tm, Thm

    C, D, Th, Tm, Thm = suff_stats(h, m, -1)
    without = C / (C + D)
    cur = {"C": C, "D": D, "Th": Th, "Tm": Tm, "Thm": Thm}
    tau_star, eps = float("-inf"), -1
    for hi, mi in sorted(zip(h, m), key=lambda x: abs(x[1])):
        if hi == 0 and abs(mi) < eps:
            cur["Thm"] -= 1
        elif hi == 0:
            cur["Th"] -= 1
        elif abs(mi) < eps:
            cur["Tm"] -= 1
        elif hi * mi > 0:
            cur["C"] -= 1
        else:
            cur["D"] -= 1
        eps = abs(mi)
        if hi == 0 and abs(mi) <= eps:
            cur["Thm"] += 1
        elif hi == 0:
            cur["Th"] += 1
        elif abs(mi) <= eps:
            cur["Tm"] += 1
        elif hi * mi > 0:
            cur["C"] += 1
        else:
            cur["D"] += 1
        tau_star = max(tau_star, (cur["C"] + cur["Thm"]) / sum(cur.values()))
    return tau_star, without


def test_videogen_rewardbench_equals_calc_accuracy(videogen_dir, tmp_path, use_scorer):
    import pandas as pd

    use_scorer(ScriptedScorer(kind="head", dimensions=("VQ", "MQ", "TA"), fail={"6"}))
    results, samples = _eval("videogen_rewardbench", videogen_dir, tmp_path / "o")
    df = pd.read_csv(videogen_dir / "videogen-rewardbench.csv")  # as eval_videogen_rewardbench.py reads it
    assert df["Overall"].isna().any() and df["MQ"].isna().any()  # empty cells are in the fixture
    scored = {int(s["id"]): s for s in samples if s["failure"] is None}
    df = df.loc[sorted(scored)]  # the pair whose video failed never reaches the official script
    got = results["metrics"]["videogen"]
    for attr, column in (("VQ", "VQ"), ("MQ", "MQ"), ("TA", "TA"), ("ALL", "Overall")):
        h = df[column].map({"A": 1, "B": -1, "same": 0}).tolist()
        if attr == "ALL":
            m = [scored[i]["margin"] for i in df.index]
        else:
            m = [scored[i]["scores"][attr][0] - scored[i]["scores"][attr][1] for i in df.index]
        with_ties, without_ties = calc_accuracy_replica(h, m)
        name = "Overall" if attr == "ALL" else attr
        assert got["with_ties"][name] == pytest.approx(with_ties, abs=1e-12), attr
        assert got["without_ties"][name] == pytest.approx(without_ties, abs=1e-12), attr
    assert results["failures"]["media"] == {"count": 1, "examples": [
        {"id": "6", "reason": "6: not a readable video (corrupt)"}]}
    assert results["items"] == 40 and results["metrics"]["failed"] == 1
    table = (tmp_path / "o" / "results.md").read_text()
    assert "- 1 media failures" in table and "`6`: 6: not a readable video (corrupt)" in table


def test_the_scripted_judge_follows_the_shown_order():
    # Guard for the scorer the replicas rely on: a swapped record carries the flipped label.
    pair = PreferencePair(id="x", prompt="p", a=Candidate(text="a"), b=Candidate(text="b"), label="A")
    judge = ScriptedScorer(weights=(1, 0, 0, 0))
    assert judge.score([pair])[0].preferred == "A" and judge.score([pair.swapped()])[0].preferred == "B"
