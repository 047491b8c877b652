"""`mmreward eval` reads its options like every other command: `EvalConfig` through `mmreward.config.load_config`
(YAML via --config, flags override, unknown keys are errors naming the closest fields, --help lists every field).

A toy benchmark and a length scorer stand in for the model, so each run takes milliseconds; what is checked is the
config the runner received (`results.json` records it) and what the loader was given.
"""

import dataclasses
import json
from types import SimpleNamespace

import pytest

import mmreward.scoring
from mmreward.cli import build_parser, main
from mmreward.config import ConfigError, load_config
from mmreward.data.schema import PointwiseRecord
from mmreward.evaluation.benchmarks import BENCHMARKS, BenchmarkData, BenchmarkSpec
from mmreward.evaluation.eval_config import CHOICES, EvalConfig
from mmreward.evaluation.metrics.glue import METRICS


class LengthScorer:
    kind = "head"

    def score(self, records, **kwargs):
        return [SimpleNamespace(score=float(len(r.response)), error=None) for r in records]


@pytest.fixture
def toy(monkeypatch):
    """Registers a 3-item toy benchmark; returns what its loader was called with, per call."""
    calls = []
    records = [PointwiseRecord(id=f"g/{i}", prompt="p", response="x" * (i + 1), meta={"group": "g"})
               for i in range(3)]

    def load_toy(source, options):
        calls.append({"source": source, "options": dict(options)})
        return BenchmarkData(name="toy", kind="listwise", records=records)

    monkeypatch.setitem(BENCHMARKS, "toy", BenchmarkSpec(loader=load_toy, description="toy", metrics=("toy",),
                                                         download="nowhere"))
    monkeypatch.setitem(METRICS, "toy", lambda rows, scorer: {"n": len(rows)})
    monkeypatch.setattr(mmreward.scoring, "load_scorer", lambda *a, **kw: LengthScorer())
    return calls


def _results(out):
    return json.loads((out / "results.json").read_text())


def test_config_yaml_with_flag_overrides(toy, tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("benchmark: toy\ndata: FROM_YAML\nmodel: m\nlimit: 1\nbatch_size: 3\norder: both\n"
                      "options: {split: test, subset: a}\nprogress: false\nreport: false\n")
    out = tmp_path / "out"
    # Flags win over the YAML (limit, data), --option merges into the YAML's options, dashes or underscores.
    assert main(["eval", "--config", str(config), "--limit", "2", "--data", "FROM_FLAG", "--out", str(out),
                 "--option", "subset=b", "--num-workers", "0", "--batch_size", "5"]) == 0
    assert toy == [{"source": "FROM_FLAG", "options": {"split": "test", "subset": "b"}}]
    results = _results(out)
    assert results["items"] == 2 and results["metrics"]["toy"] == {"n": 2}
    cfg = results["config"]
    assert (cfg["limit"], cfg["batch_size"], cfg["order"], cfg["progress"], cfg["report"]) == (2, 5, "both", False,
                                                                                              False)
    assert not (out / "report.html").exists()        # report: false from the YAML


def test_suite_is_the_old_name_of_config_and_no_flags_still_work(toy, tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("benchmark: toy\nprobes: []\n")
    out = tmp_path / "out"
    assert main(["eval", "--suite", str(suite), "--data", "D", "--model", "m", "--out", str(out), "--no-progress",
                 "--no-report", "--k", "3", "--order", "random", "--seed", "7"]) == 0
    cfg = _results(out)["config"]
    assert (cfg["k"], cfg["order"], cfg["seed"], cfg["progress"], cfg["report"]) == (3, "random", 7, False, False)
    # The same through load_config directly: flags are YAML scalars coerced to the field types.
    direct = load_config(EvalConfig, suite, ["--data", "D", "--model", "m", "--probes", "length_bias,fps_sensitivity",
                                             "--limit", "4"])
    assert direct.probes == ["length_bias", "fps_sensitivity"] and direct.limit == 4 and direct.benchmark == "toy"


def test_unknown_keys_name_the_closest_fields(toy, tmp_path, capsys):
    config = tmp_path / "eval.yaml"
    config.write_text("benchmark: toy\ndata: D\nmodel: m\nbatch_sise: 4\n")
    assert main(["eval", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"mmreward eval: error: {config}: batch_sise: unknown config key; did you mean batch_size," in err
    assert toy == []                                 # refused before anything was loaded
    assert main(["eval", "--benchmark", "toy", "--data", "D", "--model", "m", "--lmit", "3"]) == 2
    assert "error: --lmit: unknown flag; did you mean --limit," in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--data", "D"], "--benchmark and --model are required: give the flag, or set the key in the --config YAML"),
    (["--benchmark", "nope", "--data", "D", "--model", "m"], "unknown benchmark 'nope'; known: "),
    (["--benchmark", "toy", "--data", "D", "--model", "m", "--k", "0"], "k must be a positive integer, got 0"),
    (["--benchmark", "toy", "--data", "D", "--model", "m", "--probes", "length_bais"],
     "unknown probe(s) length_bais; known: "),
    (["--benchmark", "toy", "--data", "D", "--model", "m", "--limit", "many"], "--limit: 'many' does not fit int | None"),
    (["--benchmark", "toy", "--data", "D", "--model", "m", "--option", "split"], "--option split: expected KEY=VALUE"),
])
def test_bad_values_are_one_line_errors_before_loading(toy, capsys, argv, message):
    assert main(["eval", *argv]) == 2
    assert message in capsys.readouterr().err
    assert toy == []


def test_yaml_values_are_checked_like_flags(toy, tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("benchmark: toy\ndata: D\nmodel: m\non_error: ignore\n")
    with pytest.raises(ConfigError, match=r"eval\.yaml: on_error must be one of raise, skip, got 'ignore'"):
        load_config(EvalConfig, config)


def test_help_lists_every_field_once_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for f in dataclasses.fields(EvalConfig):
        assert text.count(f"  --{f.name} ") == 1, f.name
    assert "  --batch_size int (default 8)" in text and "  --order str (default 'given')" in text
    assert "--config FILE.yaml (or --suite FILE.yaml)" in text and "--option KEY=VALUE" in text


def test_every_field_is_a_flag_with_dashes_or_underscores():
    parser = build_parser("eval")
    for f in dataclasses.fields(EvalConfig):
        value = {"options": "{}", "scorer": "head", **{k: v[0] for k, v in CHOICES.items()}}.get(f.name, "1")
        for spelling in {f.name, f.name.replace("_", "-")}:
            args = parser.parse_args(["eval", f"--{spelling}", value])
            assert getattr(args, f.name) == value and args.unknown_flags == [], spelling
    assert parser.parse_args(["eval", "--no-progress", "--no-report"]).report == "false"


# --- a judge's template and tools (judge_template, judge_tools) ----------------------------------------------------

@pytest.fixture
def judged(monkeypatch, scoring_media):
    """A 1-pair benchmark judged by a scripted judge (default tools) that answers like LLaVA-Critic and keeps the
    text of every prompt it is given."""
    from testkit import make_pair

    from mmreward.agent.judge_scorer import JudgeConfig, JudgeScorer
    from mmreward.data.schema import parse_record

    record = parse_record(make_pair("r", {"text": "a cross"}, {"text": "the digit seven"}, shared="i0.png",
                                    prompt="What does this image present?", label="B"), base_dir=scoring_media)
    monkeypatch.setitem(BENCHMARKS, "toy_pairs", BenchmarkSpec(
        loader=lambda source, options: BenchmarkData(name="toy_pairs", kind="pairs", records=[record]),
        description="toy", metrics=("toy",), download="nowhere"))
    monkeypatch.setitem(METRICS, "toy", lambda rows, scorer: {"preferred": [r["preferred"] for r in rows]})
    prompts = []

    def policy(conversations, images):
        prompts.extend(m["content"][-1]["text"] for m in (c[-1] for c in conversations))
        return ["The first response misreads the image. Therefore, the second response is better."] * len(images)

    judge = JudgeScorer(None, None, JudgeConfig(backbone="x", initial_frames=2), generate_fn=policy)
    monkeypatch.setattr(mmreward.scoring, "load_scorer", lambda *a, **kw: judge)
    return SimpleNamespace(judge=judge, prompts=prompts)


RUN = ["eval", "--benchmark", "toy_pairs", "--data", "D", "--model", "m", "--no-progress", "--no-report"]


def test_judge_template_without_tools_reaches_the_judge_prompt_as_published(judged, tmp_path):
    out = tmp_path / "out"
    assert main([*RUN, "--out", str(out), "--judge-template", "llava_critic_pairwise", "--judge-tools", "none"]) == 0
    (prompt,) = judged.prompts
    assert prompt.startswith("Given an image and a corresponding question, please serve as an unbiased")
    assert prompt.endswith("The first response: [a cross]\nThe second response: [the digit seven]\nASSISTANT:\n")
    assert "call" not in prompt and "crop" not in prompt           # no tool paragraph at all
    assert judged.judge.config.tools == [] and judged.judge.config.template == "llava_critic_pairwise"
    results = _results(out)
    assert results["metrics"]["toy"] == {"preferred": ["B"]}     # the critic's "second response" verdict
    assert (results["config"]["judge_template"], results["config"]["judge_tools"]) == ("llava_critic_pairwise", [])


def test_judge_tools_name_the_tools_of_the_paragraph_and_null_keeps_the_judges(judged, tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("judge_tools: [crop]\n")
    # Without the options the judge keeps its own template and its default tools (every tool in the paragraph).
    assert main([*RUN, "--out", str(tmp_path / "a")]) == 0
    assert judged.prompts[0].startswith("Question: What does this image present?")
    assert "call select_frames to " in judged.prompts[0] and ", or crop to " in judged.prompts[0]
    assert main([*RUN, "--out", str(tmp_path / "b"), "--config", str(config)]) == 0
    assert "Before answering, you can look again: call crop to " in judged.prompts[1]
    assert "select_frames" not in judged.prompts[1] and judged.judge.config.tools == ["crop"]
    # A comma list on the command line, each name once; "[]" is no tools too.
    direct = load_config(EvalConfig, None, {"benchmark": "toy_pairs", "data": "D", "model": "m",
                                            "judge_tools": "crop, select_frames,crop"})
    assert direct.judge_tools == ["crop", "select_frames"]
    assert load_config(EvalConfig, None, RUN[1:7] + ["--judge-tools", "[]"]).judge_tools == []


@pytest.mark.parametrize("argv,message", [
    (["--judge-template", "llava_critc_pairwise"],
     "unknown judge template 'llava_critc_pairwise'; did you mean llava_critic_pairwise"),
    (["--judge-tools", "crop,selct_frames"], "unknown judge tool 'selct_frames'; did you mean select_frames?"),
    (["--scorer", "head", "--judge-tools", "none"],
     "judge_template / judge_tools are options of the judge scorer, not of --scorer head"),
])
def test_bad_judge_options_are_refused_before_loading(judged, capsys, argv, message):
    assert main([*RUN, *argv]) == 2
    assert message in capsys.readouterr().err
    assert judged.prompts == []


def test_judge_options_on_a_scorer_that_loads_as_no_judge_are_an_error(toy, capsys):
    # The scorer kind comes from the checkpoint (LengthScorer here): refused once loaded, nothing is scored.
    assert main(["eval", "--benchmark", "toy", "--data", "D", "--model", "m", "--judge-template",
                 "llava_critic_pairwise", "--no-progress"]) == 2
    assert ("--judge-template llava_critic_pairwise: the model loads as a LengthScorer, not a judge; add --scorer "
            "judge" in capsys.readouterr().err)
