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
